"""``deploysim view``: the report's page and viewer over every prefix, served on loopback.

Routes (GET only):

* ``/``: the report page (rendered once at start), its viewer in API mode;
* ``/api/prefixes?offset=&limit=&category=&model=&flagged=``: one page of viewer items,
  ``{"total", "offset", "limit", "items", "messages"}`` (filters as in
  :mod:`deploysim.report.transcripts`; ``limit`` at most 200);
* ``/api/facets``: the categories and models to filter by.

The server binds 127.0.0.1 only and answers only requests whose ``Host`` is that address or
``localhost`` on its port, so a web page elsewhere cannot read the store through DNS rebinding.
One SQLite connection serves every request, under a lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from deploysim.errors import UsageError
from deploysim.report.data import model_labels
from deploysim.report.page import csp, render_api_page, viewer_facets
from deploysim.report.transcripts import (
    TranscriptFilter,
    count_prefixes,
    load_items,
    load_messages,
    page_prefix_ids,
)
from deploysim.store import Store

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MAX_LIMIT = 200


class ViewerServer(ThreadingHTTPServer):
    """A threaded HTTP server holding one open store."""

    daemon_threads = True

    def __init__(self, store: Store, port: int) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.labels = model_labels(store)
        self.facets = viewer_facets(store)
        self.page = render_api_page(store).encode("utf-8")
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        """The address to open in a browser."""
        return f"http://{HOST}:{self.server_address[1]}/"

    def prefixes(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """One page of items for the API (raises ``ValueError`` on a bad parameter)."""
        offset = max(0, int(_one(query, "offset") or 0))
        limit = min(MAX_LIMIT, max(1, int(_one(query, "limit") or 20)))
        f = TranscriptFilter(
            category=_one(query, "category") or None,
            model=_one(query, "model") or None,
            flagged=(_one(query, "flagged") or "").lower() in ("1", "true", "yes", "on"),
        )
        with self.lock:
            total = count_prefixes(self.store, f, self.labels)
            ids = page_prefix_ids(self.store, f, self.labels, offset=offset, limit=limit)
            items, refs = [], list[str]()
            for item, item_refs in load_items(self.store, ids, self.labels):
                items.append(item)
                refs.extend(item_refs)
            messages = dict(load_messages(self.store, dict.fromkeys(refs)))
        return {
            "total": total,
            "offset": offset,
            "limit": limit,
            "items": items,
            "messages": messages,
        }


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        allowed = {f"{HOST}:{port}", f"localhost:{port}"}
        if self.headers.get("Host", "") not in allowed:
            self._send_json(HTTPStatus.FORBIDDEN, {"error": "unexpected Host header"})
            return
        url = urlsplit(self.path)
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.page)
        elif url.path == "/api/prefixes":
            try:
                body = self.server.prefixes(parse_qs(url.query))
            except ValueError as e:
                self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
                return
            self._send_json(HTTPStatus.OK, body)
        elif url.path == "/api/facets":
            self._send_json(HTTPStatus.OK, self.server.facets)
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})

    def _send_json(self, status: HTTPStatus, value: Any) -> None:
        body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(status, "application/json; charset=utf-8", body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", csp(api=True))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines would print every filter a user clicks; the CLI says where to look.
        pass


def make_server(store_path: Path, *, port: int = DEFAULT_PORT) -> ViewerServer:
    """Open the store and bind the server (``port=0``: any free port); not yet serving."""
    if not store_path.is_file():
        raise UsageError(f"{store_path}: no such store")
    store = Store(store_path)
    try:
        return ViewerServer(store, port)
    except OSError as e:
        store.close()
        raise UsageError(f"cannot listen on {HOST}:{port} ({e}); pick another --port") from e


def serve(
    store_path: Path,
    *,
    port: int = DEFAULT_PORT,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C); ``on_ready`` gets the URL once listening."""
    server = make_server(store_path, port=port)
    try:
        if on_ready is not None:
            on_ready(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.store.close()
