"""A minimal Hub-compatible HTTP server on 127.0.0.1 for `nuwa-hf push`: repo creation, pre-upload and commit.

It answers every file as a "regular" (inline base64) upload, so it never exercises the real Hub's large-file
(LFS / Xet) path; it records what each commit uploaded.
"""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.repos = {}
        self.commits = []
        self.requests = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, payload=None, headers=None):
                body = json.dumps(payload if payload is not None else {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    return self.rfile.read(length)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return b""

            def do_POST(self):
                body = self._body()
                hub.requests.append(("POST", self.path))
                if self.path == "/api/repos/create":
                    payload = json.loads(body)
                    repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
                    hub.repos[repo_id] = payload
                    return self._send(200, {"url": f"http://{self.headers['Host']}/{repo_id}", "name": repo_id})
                if self.path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if "/preupload/" in self.path:
                    files = json.loads(body)["files"]
                    return self._send(200, {"files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
                if "/commit/" in self.path:
                    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    files = {}
                    for line in lines:
                        if line.get("key") == "file":
                            value = line["value"]
                            files[value["path"]] = base64.b64decode(value["content"])
                    hub.commits.append({"path": self.path, "files": files, "header": lines[0]})
                    repo_id = self.path.split("/api/models/")[1].split("/commit/")[0]
                    oid = f"{len(hub.commits):040x}"
                    return self._send(200, {"commitUrl": f"http://{self.headers['Host']}/{repo_id}/commit/{oid}",
                                            "commitOid": oid, "pullRequestUrl": None})
                return self._send(404, {"error": f"no route POST {self.path}"})

            def do_GET(self):
                hub.requests.append(("GET", self.path))
                return self._send(404, {"error": f"no route GET {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
