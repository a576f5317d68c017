"""``deploysim view``: the local server and its JSON API (loopback only)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from deploysim.report.server import ViewerServer, make_server
from tests.report.synthetic import Synthetic


@pytest.fixture()
def server(hostile: Synthetic) -> Iterator[ViewerServer]:
    srv = make_server(hostile.path, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        srv.store.close()
        thread.join(timeout=5)


def get(srv: ViewerServer, path: str, host: str | None = None) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=10)
    headers = {"Host": host} if host else {}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


def api(srv: ViewerServer, query: str) -> dict[str, Any]:
    status, ctype, body = get(srv, f"/api/prefixes?{query}")
    assert status == 200 and ctype.startswith("application/json")
    value: dict[str, Any] = json.loads(body)
    return value


def test_binds_loopback_only(server: ViewerServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_page_is_the_report_in_api_mode(server: ViewerServer, hostile: Synthetic) -> None:
    status, ctype, body = get(server, "/")
    assert status == 200 and ctype.startswith("text/html")
    html = body.decode().replace("&#x27;", "'")
    assert '"mode":"api"' in html and f'"total":{hostile.prefixes}' in html
    assert "<section id=rates>" in html and "connect-src 'self'" in html


def test_pages_cover_every_prefix_once(server: ViewerServer, hostile: Synthetic) -> None:
    seen: list[int] = []
    offset = 0
    while True:
        page = api(server, f"offset={offset}&limit=37")
        assert page["total"] == hostile.prefixes
        if not page["items"]:
            break
        for item in page["items"]:
            assert all(h in page["messages"] for h in item["prefix"])
        seen += [i["id"] for i in page["items"]]
        offset += 37
    assert seen == sorted(set(seen)) and len(seen) == hostile.prefixes


def test_filters_narrow_the_list(server: ViewerServer) -> None:
    everything = api(server, "limit=200")["total"]
    flagged = api(server, "flagged=1&limit=200")
    refusal = api(server, "category=REFUSAL&flagged=1&model=synthetic/m1&limit=200")
    assert 0 < refusal["total"] < flagged["total"] < everything
    for item in refusal["items"]:
        assert any(
            g["category"] == "REFUSAL" and g["flagged"]
            for r in item["responses"]
            if r["model"] == "synthetic/m1"
            for g in r["grades"]
        )


def test_limit_is_capped_and_bad_input_refused(server: ViewerServer) -> None:
    assert len(api(server, "limit=100000")["items"]) <= 200
    status, _, body = get(server, "/api/prefixes?offset=abc")
    assert status == 400 and b"error" in body
    assert get(server, "/nope")[0] == 404
    assert json.loads(get(server, "/api/facets")[2])["categories"] == [
        "PROFANITY",
        "REFUSAL",
        "TOOL",
    ]


def test_foreign_host_header_is_refused(server: ViewerServer) -> None:
    """A page on another site that rebinds its name to 127.0.0.1 cannot read the store."""
    assert get(server, "/api/prefixes", host="evil.example:80")[0] == 403
    assert get(server, "/", host=f"localhost:{server.server_address[1]}")[0] == 200
