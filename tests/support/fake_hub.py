"""A deliberately misbehaving Hugging Face Hub for error-injection tests (a hand-written
stand-in: no real hub can be made to serve wrong bytes on demand). It serves one repository
`acme/bad` at commit c0ffee... with the hub's JSON shapes and Range support, and misbehaves
according to MODE:

  dotdot  the tree lists a file named ../../evil
  badsha  an LFS file's bytes do not match the sha256 the tree lists
  cut     the first download of weights.bin is cut after 100000 bytes; Range requests work
  range   like cut, but the resumed request is answered with a Content-Range that does not
          start where the client asked
  small   config.json's bytes do not match the git blob id the tree lists
  ok      behaves

Usage: python3 fake_hub.py MODE  (prints the port on stdout, serves until killed)
"""
import hashlib, http.server, json, os, sys

MODE = sys.argv[1]
COMMIT = "c0ffee" + "0" * 34
WEIGHTS = bytes((i * 7 + 3) % 251 for i in range(300_000))
CONFIG = b'{"architectures": ["Bad"]}'
cut_done = False


def files():
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    if MODE == "badsha":
        sha = hashlib.sha256(b"something else").hexdigest()
    out = [
        {"type": "file", "path": "config.json", "size": len(CONFIG),
         "oid": hashlib.sha1(b"blob %d\0" % len(CONFIG) + CONFIG).hexdigest()},
        {"type": "file", "path": "weights.bin", "size": len(WEIGHTS), "oid": "y",
         "lfs": {"oid": sha, "size": len(WEIGHTS), "pointerSize": 130}},
    ]
    if MODE == "dotdot":
        out.append({"type": "file", "path": "../../evil", "size": 1, "oid": "z"})
    return out


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        global cut_done
        p = self.path.split("?")[0]
        if p == "/api/models/acme/bad/revision/main":
            return self.send(200, json.dumps({"id": "acme/bad", "sha": COMMIT,
                "siblings": [{"rfilename": f["path"]} for f in files()]}).encode())
        if p.startswith("/api/models/acme/bad/revision/"):
            return self.send(404, b'{"error":"no"}', [("X-Error-Code", "RevisionNotFound")])
        if p == f"/api/models/acme/bad/tree/{COMMIT}":
            return self.send(200, json.dumps(files()).encode())
        prefix = f"/acme/bad/resolve/{COMMIT}/"
        if p.startswith(prefix):
            name = p[len(prefix):]
            config = CONFIG.replace(b"Bad", b"Bax") if MODE == "small" else CONFIG
            data = {"config.json": config, "weights.bin": WEIGHTS}.get(name)
            if data is None:
                return self.send(404, b"{}", [("X-Error-Code", "EntryNotFound")])
            rng = self.headers.get("Range")
            start = int(rng.split("=")[1].split("-")[0]) if rng else 0
            if MODE in ("cut", "range") and name == "weights.bin" and not cut_done and start == 0:
                cut_done = True
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:100_000])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = data[start:]
            headers = [("X-Repo-Commit", COMMIT), ("ETag", '"x"')]
            if rng:
                first = 0 if MODE == "range" else start
                headers.append(("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}"))
                return self.send(206, body, headers)
            return self.send(200, body, headers)
        self.send(404, b"{}", [("X-Error-Code", "RepoNotFound")])


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
