#!/usr/bin/env python3
"""A static file server on 127.0.0.1 for the end-to-end tests: an apt mirror or a download site
is only files over HTTP, and this serves a directory the way such servers do (GET, HEAD,
`Range: bytes=N-` answered with 206 and Content-Range).

Stand-in: no real Debian mirror or download site can run here (no network), so the tests serve
repositories built with dpkg-deb, apt-ftparchive and gpg through this server; apt-get itself
reads from it in the same tests.

Usage: static_server.py DIR [--cut NAME:BYTES]
  --cut NAME:BYTES  the first GET of a file whose name is NAME sends BYTES bytes and then drops
                    the connection (to test resumed downloads).
Prints the port on the first line of stdout.
"""
import http.server
import os
import socketserver
import sys

root = os.path.abspath(sys.argv[1])
cuts = {}
args = sys.argv[2:]
while args:
    if args[0] == "--cut":
        name, n = args[1].rsplit(":", 1)
        cuts[name] = int(n)
        args = args[2:]
    else:
        sys.exit("unknown argument " + args[0])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def target(self):
        path = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
        full = os.path.join(root, path)
        if not full.startswith(root) or not os.path.isfile(full):
            return None
        return full

    def do_HEAD(self):
        self.serve(body=False)

    def do_GET(self):
        self.serve(body=True)

    def serve(self, body):
        full = self.target()
        if full is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        size = os.path.getsize(full)
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        if start > size:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.send_header("Content-Length", str(size - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not body:
            return
        with open(full, "rb") as f:
            f.seek(start)
            data = f.read()
        name = os.path.basename(full)
        if name in cuts and self.command == "GET":
            n = cuts.pop(name)
            self.wfile.write(data[:n])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(data)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
