#!/usr/bin/env python3
"""A static file server on 127.0.0.1 for the end-to-end tests: an apt mirror or a download site
is only files over HTTP, and this serves a directory the way such servers do (GET, HEAD,
`Range: bytes=N-` answered with 206 and Content-Range, `ETag` and `Last-Modified`, `If-Range`
honoured: a validator that is not the file's current one gets the whole file, 200).

Stand-in: no real Debian mirror, download site or osv.dev bucket can run here (no network), so
the tests serve repositories built with dpkg-deb, apt-ftparchive and gpg, and OSV exports in
osv.dev's bucket layout (`<ECOSYSTEM>/all.zip`, the ecosystem percent-encoded in the URL),
through this server; apt-get itself reads from it in the same tests. `--goog-hash` adds the
`x-goog-hash` header Google Cloud Storage sends (md5 and crc32c, base64).

Usage: static_server.py DIR [--cut NAME:BYTES] [--goog-hash] [--bad-goog-hash NAME]
                            [--lie-length NAME:DELTA]
  --cut NAME:BYTES        the first GET of a file whose name (or path under DIR) is NAME sends
                          BYTES bytes and then drops the connection (to test resumed downloads).
  --goog-hash             send x-goog-hash with every file.
  --bad-goog-hash NAME    send an x-goog-hash md5 for NAME that is not its content's.
  --lie-length NAME:DELTA announce NAME's Content-Length DELTA bytes off its real size.
Prints the port on the first line of stdout. Logs each request to stderr: method, path, and
the Range / If-Range / If-None-Match headers it carried.
"""
import base64
import hashlib
import http.server
import os
import socketserver
import sys
import urllib.parse

root = os.path.abspath(sys.argv[1])
cuts = {}
goog = False
bad_goog = set()
lies = {}
args = sys.argv[2:]
while args:
    if args[0] == "--cut":
        name, n = args[1].rsplit(":", 1)
        cuts[name] = int(n)
        args = args[2:]
    elif args[0] == "--goog-hash":
        goog = True
        args = args[1:]
    elif args[0] == "--bad-goog-hash":
        goog = True
        bad_goog.add(args[1])
        args = args[2:]
    elif args[0] == "--lie-length":
        name, n = args[1].rsplit(":", 1)
        lies[name] = int(n)
        args = args[2:]
    else:
        sys.exit("unknown argument " + args[0])


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def named(full, table):
    """The key of `table` naming this file: its base name or its path under the root."""
    rel = os.path.relpath(full, root)
    for k in (rel, os.path.basename(full)):
        if k in table:
            return k
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        extra = "".join(
            " %s=%s" % (h.lower(), self.headers.get(h))
            for h in ("Range", "If-Range", "If-None-Match")
            if self.headers.get(h)
        )
        sys.stderr.write("%s %s%s\n" % (self.command, self.path, extra))
        sys.stderr.flush()

    def target(self):
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        path = os.path.normpath(path).lstrip("/")
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
        st = os.stat(full)
        size = st.st_size
        etag = '"%x-%x"' % (size, st.st_mtime_ns)
        start = 0
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-") and if_range in (None, etag):
            start = int(rng[6:-1])
        if start > size:
            self.send_response(416)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        lie = named(full, lies)
        self.send_header("Content-Length", str(size - start + (lies[lie] if lie else 0)))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        if goog:
            with open(full, "rb") as f:
                whole = f.read()
            md5 = hashlib.md5(whole).digest()
            if named(full, {k: 1 for k in bad_goog}):
                md5 = hashlib.md5(whole + b"x").digest()
            crc = crc32c(whole).to_bytes(4, "big")
            self.send_header(
                "x-goog-hash",
                "crc32c=%s,md5=%s" % (base64.b64encode(crc).decode(), base64.b64encode(md5).decode()),
            )
        self.end_headers()
        if not body:
            return
        with open(full, "rb") as f:
            f.seek(start)
            data = f.read()
        if lie:
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        name = named(full, cuts)
        if name and self.command == "GET":
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
