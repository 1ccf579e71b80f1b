"""A small Hugging Face Hub-compatible HTTP server for tests: the real ``huggingface_hub`` client talks to it.

    >>> from support.local_hub_server import LocalHubServer   # tests/ on sys.path (as the tests have it)
    >>> with LocalHubServer(max_seconds=120) as hub:          # 127.0.0.1, a free port, in-memory storage
    ...     # HF_ENDPOINT=hub.url in a subprocess (huggingface_hub reads HF_ENDPOINT at import time),
    ...     # or HfApi(endpoint=hub.url) / snapshot_download(..., endpoint=hub.url) in this process.
    ...     ...

It implements the routes that ``create_repo``, ``upload_folder`` / ``create_commit``, ``push_to_hub``,
``create_branch``, ``repo_info`` / ``model_info``, ``list_repo_tree``, ``hf_hub_download``, ``snapshot_download`` and
``from_pretrained`` need, for MODEL repositories, with git-like commits kept in memory:

    POST   /api/repos/create                          create a repo (409 if it exists; first commit: .gitattributes)
    DELETE /api/repos/delete                          delete a repo
    GET    /api/whoami-v2                             the token's user
    POST   /api/validate-yaml                         model-card metadata check (always valid)
    GET    /api/models/{id}[/revision/{rev}]          repo info: sha, siblings, private, ...
    GET    /api/models/{id}/tree/{rev}[/{path}]       file listing (recursive, paginated with a Link header)
    POST   /api/models/{id}/preupload/{rev}           always "regular" upload mode, with the current blob oid
    POST   /api/models/{id}/commit/{rev}              NDJSON commit: file (base64), deletedFile, deletedFolder
    POST   /api/models/{id}/branch/{branch}           create a branch (409 when it exists)
    HEAD   /{id}/resolve/{rev}/{path}                 X-Repo-Commit, ETag (git blob sha1), Content-Length
    GET    /{id}/resolve/{rev}/{path}                 the file (with single-range "bytes=N-[M]" support)

Errors carry the headers the client maps to its exceptions (``X-Error-Code: RepoNotFound / RevisionNotFound /
EntryNotFound``). With ``token="..."`` the server checks ``Authorization: Bearer`` on writes and on private repos.

What it does NOT cover (say so wherever a test relies on it): the real Hub's large-file path (the "lfs" upload mode,
LFS batch / multipart uploads to S3 and the Xet content-addressed storage, the CDN redirects of ``resolve``), real
authentication and token scopes, rate limits (429), gated repos, pull requests, tags, and server-side file checks.
Every file is committed inline (base64), whatever its size.

Bounded: it listens on 127.0.0.1 only, each connection times out, and the server stops by itself after
``max_seconds``. ``disabled_routes`` (e.g. ``{"tree"}``) makes routes answer a bare 404, to reproduce a server or proxy
that lacks them (``snapshot_download`` then returns whatever is cached without raising).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

from nuwa_hf.hub.model_folder import git_blob_sha1

GITATTRIBUTES = (
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
).encode()
ROUTES = ("create", "delete", "whoami", "validate-yaml", "info", "tree", "preupload", "commit", "branch", "resolve")


@dataclass
class Commit:
    oid: str
    parent: Optional[str]
    summary: str
    description: str
    files: dict  # path -> bytes (the whole tree at this commit)
    date: float = field(default_factory=time.time)


@dataclass
class Repo:
    repo_id: str
    private: bool
    branches: dict = field(default_factory=dict)  # name -> commit oid
    commits: dict = field(default_factory=dict)  # oid -> Commit

    def resolve(self, revision: str) -> Optional[Commit]:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if re.fullmatch(r"[0-9a-f]{40}", revision or ""):
            return self.commits.get(revision)
        return None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: Optional[str] = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class LocalHubServer:
    """A Hub-compatible server on 127.0.0.1 in a background thread (see the module docstring).

    Args:
        token: when set, writes need ``Authorization: Bearer <token>`` and private repos are hidden (404) from
            requests without it. When ``None``, every request is accepted (any token, or none).
        user: the namespace of the token's user (``whoami``; repos created without a namespace go there).
        page_size: entries per page of the tree listing (the Hub uses 1000); small values exercise pagination.
        max_seconds: the server shuts itself down after this many seconds.
        disabled_routes: route names from :data:`ROUTES` that answer a bare 404.
    """

    def __init__(self, *, token: Optional[str] = None, user: str = "tester", page_size: int = 1000,
                 max_seconds: float = 300.0, disabled_routes: Iterable[str] = ()):
        unknown = set(disabled_routes) - set(ROUTES)
        if unknown:
            raise ValueError(f"Unknown route name(s) {sorted(unknown)}; known: {ROUTES}.")
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}.")
        self.token, self.user, self.page_size = token, user, int(page_size)
        self.max_seconds = float(max_seconds)
        self.disabled_routes = set(disabled_routes)
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path with query), in arrival order
        self.lock = threading.RLock()
        self._stop_lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._timer: Optional[threading.Timer] = None
        self.url: Optional[str] = None

    # ----------------------------------------------------------------------------------------------------------------
    # Life cycle

    def start(self) -> "LocalHubServer":
        if self._server is not None:
            raise RuntimeError("The server is already running.")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="local-hub", daemon=True)
        self._thread.start()
        self._timer = threading.Timer(self.max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent; also called by the ``max_seconds`` timer).

        ``running`` turns False only once the listening socket is closed."""
        with self._stop_lock:
            timer, self._timer = self._timer, None
            if timer is not None and timer is not threading.current_thread():
                timer.cancel()
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
                self._server = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> "LocalHubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------------------------
    # Inspection helpers for tests

    def files(self, repo_id: str, revision: str = "main") -> dict:
        """``{path: bytes}`` of a repo at a revision."""
        with self.lock:
            repo = self.repos[repo_id]
            commit = repo.resolve(revision)
            if commit is None:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            return dict(commit.files)

    def history(self, repo_id: str, revision: str = "main") -> list[Commit]:
        """The commits of a branch, newest first."""
        with self.lock:
            repo = self.repos[repo_id]
            commit, out = repo.resolve(revision), []
            while commit is not None:
                out.append(commit)
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return out

    # ----------------------------------------------------------------------------------------------------------------
    # Storage operations (called by the handler, under the lock)

    def _bearer(self, headers) -> Optional[str]:
        value = headers.get("Authorization") or ""
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    def _check_write(self, headers) -> None:
        if self.token is not None and self._bearer(headers) != self.token:
            raise HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_id: str, headers) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and self.token is not None and self._bearer(headers) != self.token):
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    @staticmethod
    def _commit(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _new_commit(self, repo: Repo, branch: str, files: dict, summary: str, description: str = "") -> Commit:
        parent = repo.branches.get(branch)
        digest = hashlib.sha1()
        digest.update(f"{repo.repo_id}\n{branch}\n{parent}\n{summary}\n{time.time_ns()}\n".encode())
        for path in sorted(files):
            digest.update(f"{path} {git_blob_sha1(files[path])}\n".encode())
        commit = Commit(oid=digest.hexdigest(), parent=parent, summary=summary, description=description, files=files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def create_repo(self, payload: dict, headers) -> tuple[int, dict]:
        self._check_write(headers)
        if payload.get("type", "model") not in (None, "model"):
            raise HubError(400, "This local Hub only stores model repositories.")
        name = payload.get("name") or ""
        namespace = payload.get("organization") or self.user
        if not re.fullmatch(r"[\w.\-]{1,96}", name) or not re.fullmatch(r"[\w.\-]{1,96}", namespace):
            raise HubError(400, f"Invalid repo name {namespace}/{name}")
        repo_id = f"{namespace}/{name}"
        url = f"{self.url}/{repo_id}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": url}
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        repo = Repo(repo_id=repo_id, private=private)
        self.repos[repo_id] = repo
        self._new_commit(repo, "main", {".gitattributes": GITATTRIBUTES}, "initial commit")
        return 200, {"url": url, "name": repo_id, "id": repo_id}

    def delete_repo(self, payload: dict, headers) -> dict:
        self._check_write(headers)
        repo_id = f"{payload.get('organization') or self.user}/{payload.get('name')}"
        self._repo(repo_id, headers)
        del self.repos[repo_id]
        return {}

    def info(self, repo: Repo, revision: str) -> dict:
        commit = self._commit(repo, revision)
        date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(commit.date))
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id, "modelId": repo.repo_id,
            "author": repo.repo_id.split("/")[0], "sha": commit.oid, "lastModified": date, "createdAt": date,
            "private": repo.private, "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    def tree_entries(self, commit: Commit, path: str, recursive: bool) -> list[dict]:
        """The listing of a folder (``path`` "" for the root), as the Hub answers it: files and sub-folders."""
        prefix = path.strip("/")
        if prefix in commit.files:  # a file path: just that file
            return [self._file_entry(commit, prefix)]
        base = prefix + "/" if prefix else ""
        names = [name for name in commit.files if name.startswith(base)]
        if prefix and not names:
            raise HubError(404, f"Path {prefix} not found", "EntryNotFound")
        files, folders = [], set()
        for name in names:
            parts = name[len(base):].split("/")
            if not recursive and len(parts) > 1:
                folders.add(base + parts[0])
                continue
            folders.update(base + "/".join(parts[:depth]) for depth in range(1, len(parts)))
            files.append(name)
        entries = [{"type": "directory", "oid": hashlib.sha1(f"{commit.oid}:{folder}".encode()).hexdigest(),
                    "size": 0, "path": folder} for folder in folders]
        entries += [self._file_entry(commit, name) for name in files]
        return sorted(entries, key=lambda entry: entry["path"])

    @staticmethod
    def _file_entry(commit: Commit, name: str) -> dict:
        data = commit.files[name]
        return {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": name}

    def preupload(self, repo: Repo, revision: str, payload: dict, headers) -> dict:
        self._check_write(headers)
        commit = self._commit(repo, revision)
        answer = []
        for item in payload.get("files", []):
            current = commit.files.get(item["path"])
            answer.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
                           "oid": git_blob_sha1(current) if current is not None else None})
        return {"files": answer, "commitOid": commit.oid}

    def commit(self, repo: Repo, revision: str, body: bytes, query: dict, headers) -> dict:
        self._check_write(headers)
        if query.get("create_pr", ["0"])[0] not in ("0", "false", "False"):
            raise HubError(400, "This local Hub does not support pull requests (create_pr).")
        if revision not in repo.branches:
            if repo.resolve(revision) is not None:
                raise HubError(400, f"Cannot commit to {revision}: not a branch")
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        try:
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise HubError(400, f"Malformed NDJSON commit payload: {error}") from None
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The first line of a commit payload must be its header.")
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent and parent != repo.branches[revision]:
            raise HubError(412, f"A commit has happened since {parent}: parentCommit is not the branch head.")
        files = dict(repo.commits[repo.branches[revision]].files)
        for line in lines[1:]:
            key, value = line.get("key"), line.get("value") or {}
            path = value.get("path", "")
            if not path or path.startswith("/") or ".." in path.split("/"):
                raise HubError(400, f"Invalid path in commit: {path!r}")
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"Unsupported encoding {value.get('encoding')!r}")
                files[path] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"File to delete not found: {path}", "EntryNotFound")
            elif key == "deletedFolder":
                base = path.rstrip("/") + "/"
                doomed = [p for p in files if p.startswith(base)]
                if not doomed:
                    raise HubError(404, f"Folder to delete not found: {path}", "EntryNotFound")
                for name in doomed:
                    del files[name]
            elif key == "lfsFile":
                raise HubError(400, "This local Hub never asks for LFS uploads: got an lfsFile line.")
            else:
                raise HubError(400, f"Unsupported commit operation {key!r}")
        commit = self._new_commit(repo, revision, files, header.get("summary") or "", header.get("description") or "")
        return {"commitUrl": f"{self.url}/{repo.repo_id}/commit/{commit.oid}", "commitOid": commit.oid,
                "pullRequestUrl": None}

    def create_branch(self, repo: Repo, branch: str, payload: dict, headers) -> tuple[int, dict]:
        self._check_write(headers)
        if branch in repo.branches:
            return 409, {"error": f"Reference refs/heads/{branch} already exists"}
        start = payload.get("startingPoint") or "main"
        repo.branches[branch] = self._commit(repo, start).oid
        return 200, {}


def _make_handler(hub: LocalHubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()
        timeout = 30  # seconds per blocking socket operation: a stuck client cannot hold a thread forever
        server_version = "nuwa-hf-local-hub/1"

        def log_message(self, *args):  # keep test output clean
            pass

        # ------------------------------------------------------------------------------------------------------------
        # Plumbing

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes = b"", headers: Optional[dict] = None,
                  content_type: str = "application/json", head: bool = False, length: Optional[int] = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.send_header("Date", formatdate(usegmt=True))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def _json(self, status: int, payload, headers: Optional[dict] = None, head: bool = False) -> None:
            self._send(status, json.dumps(payload).encode(), headers, head=head)

        def _error(self, error: HubError, head: bool = False) -> None:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self._json(error.status, {"error": error.message}, headers, head=head)

        def _dispatch(self, method: str) -> None:
            body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
            split = urlsplit(self.path)
            with hub.lock:
                hub.requests.append((method, self.path))
            try:
                self._route(method, split.path, parse_qs(split.query), body)
            except HubError as error:
                self._error(error, head=method == "HEAD")
            except (KeyError, ValueError, TypeError) as error:  # a malformed request, not a server crash
                self._error(HubError(400, f"Bad request: {error!r}"), head=method == "HEAD")

        def do_GET(self):
            self._dispatch("GET")

        def do_HEAD(self):
            self._dispatch("HEAD")

        def do_POST(self):
            self._dispatch("POST")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def _disabled(self, route: str) -> bool:
            if route in hub.disabled_routes:
                self._json(404, {"error": "Not Found"})
                return True
            return False

        # ------------------------------------------------------------------------------------------------------------
        # Routes

        def _route(self, method: str, path: str, query: dict, body: bytes) -> None:
            raw = [segment for segment in path.split("/") if segment != ""]
            parts = [unquote(segment) for segment in raw]
            head = method == "HEAD"
            is_commit = len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "commit"
            payload = json.loads(body) if body and not is_commit else {}

            if parts == ["api", "repos", "create"] and method == "POST":
                if self._disabled("create"):
                    return
                with hub.lock:
                    status, answer = hub.create_repo(payload, self.headers)
                return self._json(status, answer)
            if parts == ["api", "repos", "delete"] and method == "DELETE":
                if self._disabled("delete"):
                    return
                with hub.lock:
                    return self._json(200, hub.delete_repo(payload, self.headers))
            if parts == ["api", "whoami-v2"] and method == "GET":
                if self._disabled("whoami"):
                    return
                if hub.token is not None and hub._bearer(self.headers) != hub.token:
                    raise HubError(401, "Invalid credentials in Authorization header")
                return self._json(200, {"type": "user", "name": hub.user, "fullname": hub.user, "orgs": [],
                                        "auth": {"type": "access_token",
                                                 "accessToken": {"displayName": "local", "role": "write"}}})
            if parts == ["api", "validate-yaml"] and method == "POST":
                if self._disabled("validate-yaml"):
                    return
                return self._json(200, {"errors": [], "warnings": []})

            if len(parts) >= 4 and parts[:2] == ["api", "models"]:
                repo_id = f"{parts[2]}/{parts[3]}"
                rest = parts[4:]
                with hub.lock:
                    if not rest or rest[0] == "revision":
                        if method not in ("GET", "HEAD"):
                            raise HubError(405, f"{method} is not allowed on {path}")
                        if self._disabled("info"):
                            return
                        repo = hub._repo(repo_id, self.headers)
                        revision = "/".join(rest[1:]) if rest else "main"
                        return self._json(200, hub.info(repo, revision), head=head)
                    action = rest[0]
                    if action == "tree" and method == "GET" and len(rest) >= 2:
                        if self._disabled("tree"):
                            return
                        repo = hub._repo(repo_id, self.headers)
                        commit = hub._commit(repo, rest[1])
                        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                        entries = hub.tree_entries(commit, "/".join(rest[2:]), recursive)
                        start = int(query.get("cursor", ["0"])[0])
                        page = entries[start:start + hub.page_size]
                        headers = {}
                        if start + hub.page_size < len(entries):
                            next_query = "&".join(f"{k}={quote(v[0])}" for k, v in query.items() if k != "cursor")
                            next_url = f"{hub.url}{path}?{next_query}&cursor={start + hub.page_size}"
                            headers["Link"] = f'<{next_url}>; rel="next"'
                        return self._json(200, page, headers)
                    if action == "preupload" and method == "POST" and len(rest) == 2:
                        if self._disabled("preupload"):
                            return
                        repo = hub._repo(repo_id, self.headers)
                        return self._json(200, hub.preupload(repo, rest[1], payload, self.headers))
                    if action == "commit" and method == "POST" and len(rest) == 2:
                        if self._disabled("commit"):
                            return
                        repo = hub._repo(repo_id, self.headers)
                        return self._json(200, hub.commit(repo, rest[1], body, query, self.headers))
                    if action == "branch" and method == "POST" and len(rest) >= 2:
                        if self._disabled("branch"):
                            return
                        repo = hub._repo(repo_id, self.headers)
                        status, answer = hub.create_branch(repo, "/".join(rest[1:]), payload, self.headers)
                        return self._json(status, answer)

            if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
                if self._disabled("resolve"):
                    return
                repo_id, revision, file_path = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
                with hub.lock:
                    repo = hub._repo(repo_id, self.headers)
                    commit = hub._commit(repo, revision)
                    data = commit.files.get(file_path)
                if data is None:
                    raise HubError(404, f"Entry not found: {file_path}", "EntryNotFound")
                headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_sha1(data)}"',
                           "Accept-Ranges": "bytes"}
                ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if ranged and not head:
                    first = int(ranged.group(1))
                    last = int(ranged.group(2)) if ranged.group(2) else len(data) - 1
                    if first >= len(data) or last < first:
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                    last = min(last, len(data) - 1)
                    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
                    return self._send(206, data[first:last + 1], headers, "application/octet-stream")
                return self._send(200, data, headers, "application/octet-stream", head=head, length=len(data))

            raise HubError(404, f"No route {method} {path} in the local Hub")

    return Handler


def main(argv: Optional[list] = None) -> int:
    """``PYTHONPATH=src python tests/support/local_hub_server.py [--max-seconds N] [--token T]`` (from the repository
    root): print ``HF_ENDPOINT=...`` and serve until stopped or N seconds."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    hub = LocalHubServer(token=args.token, max_seconds=args.max_seconds).start()
    print(f"HF_ENDPOINT={hub.url}  (stops after {args.max_seconds:.0f} s; Ctrl-C to stop now)", flush=True)
    try:
        while hub.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
