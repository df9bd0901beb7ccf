"""The web pages over a real database, through aiohttp's test client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html import escape
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import Settings
from bot.web import create_app, pages, serve_forever, start_web
from retrieval.service import NewsService
from tests.data import REPO
from tests.web_corpus import (
    BANK_ID,
    BANK_TITLE,
    HOSTILE_ID,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    LONG_READ_ID,
    LONG_READ_TITLE,
    QUESTION,
    TARGET_ORDINAL,
    build_db,
)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL


@pytest.fixture(scope="module")
def service(tmp_path_factory, module_store_target):
    folder = tmp_path_factory.mktemp("web")
    db = build_db(folder, module_store_target)
    service = NewsService(db, folder / "articles", index_cache=folder / "index-cache")
    yield service
    service.close()


@pytest.fixture
async def client(service):
    app = create_app(service, status=lambda: {"discord_connected": True})
    async with TestClient(TestServer(app)) as client:
        yield client


def assert_security_headers(response) -> None:
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


# -- article pages -------------------------------------------------------------------------------
async def test_article_page_shows_metadata_and_an_anchor_per_passage(client, service):
    response = await client.get(f"/articles/{BANK_ID}")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert f"<h1>{BANK_TITLE}</h1>" in html
    assert '<time datetime="2016-06-21T12:02:16">21 June 2016, 12:02</time>' in html
    assert "business/312.txt" in html and ">business<" in html
    _, passages = service.article(BANK_ID)
    for ordinal, _ in passages:
        assert f'<section id="p{ordinal}">' in html
    assert "raised its rate to 4.75%" in html
    assert "<mark>" not in html  # no question, nothing highlighted
    assert 'href="../../">' in html  # back to the search, relative to the page
    assert_security_headers(response)


async def test_related_headlines_link_only_when_the_archive_has_them(client):
    html = await (await client.get(f"/articles/{BANK_ID}")).text()
    related = html.split("<h2>Related</h2>", 1)[1]
    # The long read is in the archive: linked. Its scraped title is text, markup included.
    assert f'<a href="../../articles/{LONG_READ_ID}">A &lt;b&gt;long&lt;/b&gt; read</a>' in related
    assert '<time datetime="2016-06-19">2016-06-19</time>' in related
    # The other one is not: its title and date, no link.
    assert "<span>An article the archive lacks</span>" in related
    assert "999999" not in related


async def test_article_page_escapes_hostile_text(client):
    response = await client.get(f"/articles/{HOSTILE_ID}")
    assert response.status == 200
    html = await response.text()
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    for hostile in (HOSTILE_SCRIPT, HOSTILE_IMG):
        assert escape(hostile) in html
    assert "&amp; nothing else" in html


async def test_question_terms_are_highlighted(client):
    response = await client.get(f"/articles/{LONG_READ_ID}", params={"q": QUESTION})
    html = await response.text()
    section = re.search(rf'<section id="p{TARGET_ORDINAL}">(.*?)</section>', html).group(1)
    assert "<mark>quokka</mark>" in section
    assert "<mark>zeppelin</mark>" in section
    assert "<mark>watched</mark>" in section  # stemmed like the question's "watch"
    assert "<mark>the</mark>" not in section  # stopwords are not highlighted
    assert section.count("<mark>") == 3
    # The back link keeps the question.
    assert 'href="../../?q=where+did+the+quokka+watch+the+zeppelin%3F"' in html


async def test_question_highlight_of_hyphenated_words_is_one_mark(service):
    body = pages.wrap_spans("US-backed forces", [(3, 9), (0, 9)], "mark")
    assert body == "<mark>US-backed</mark> forces"
    assert pages.wrap_spans("a<b>c", [(1, 2), (99, 120)], "mark") == "a<mark>&lt;</mark>b&gt;c"


async def test_a_bad_question_on_an_article_page_only_drops_the_highlight(client):
    response = await client.get(f"/articles/{LONG_READ_ID}", params={"q": "x" * 5000})
    assert response.status == 200
    assert "<mark>" not in await response.text()


@pytest.mark.parametrize(
    "path",
    [
        "/articles/no/such/article",
        "/articles/..%2F..%2Fetc%2Fpasswd",
        "/articles/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
        "/articles/../../etc/passwd",
        "/articles/" + "%2e%2e%2f" * 8 + "etc/passwd",
        "/articles/local%00/long-read",
        "/articles/" + "a" * 5000,
        "/nowhere",
    ],
)
async def test_unknown_ids_and_traversal_attempts_are_404(client, path):
    response = await client.get(path)
    assert response.status == 404
    html = await response.text()
    assert "Not found" in html and "root:" not in html
    assert_security_headers(response)


async def test_article_ids_with_encoded_slashes_resolve(client):
    response = await client.get("/articles/business%2F312")
    assert response.status == 200
    assert BANK_TITLE in await response.text()


# -- search page ---------------------------------------------------------------------------------
async def test_search_page_without_question_shows_the_box_and_headlines(client):
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    assert '<form class="search" action="./" method="get"' in html
    assert 'name="q"' in html
    headlines = html.split("Latest headlines", 1)[1]
    assert f'<a href="./articles/{BANK_ID}">{BANK_TITLE}</a>' in headlines
    assert LONG_READ_TITLE in headlines
    assert '<meta name="viewport"' in html
    assert_security_headers(response)


async def test_search_page_answers_with_excerpts_and_passage_links(client):
    response = await client.get("/", params={"q": QUESTION})
    assert response.status == 200
    html = await response.text()
    results = html.split('<ol class="results">', 1)[1].split("</ol>", 1)[0]
    first = results.split("</li>", 1)[0]
    assert LONG_READ_TITLE in first
    assert (
        f'href="./articles/{LONG_READ_ID}?q=where+did+the+quokka+watch+the+zeppelin%3F#p{TARGET_ORDINAL}"'
        in first
    )
    assert "<strong>quokka</strong>" in first and "<strong>zeppelin</strong>" in first
    assert "Latest headlines" in html


async def test_search_page_says_when_nothing_matches(client):
    response = await client.get("/", params={"q": "xylophone quasar"})
    assert response.status == 200
    html = await response.text()
    assert pages.NO_MATCH in html
    assert '<ol class="results">' not in html


@pytest.mark.parametrize("q", ["", "   ", "w" * 600])
async def test_bad_questions_are_400_with_the_reason(client, q):
    response = await client.get("/", params={"q": q})
    assert response.status == 400
    html = await response.text()
    assert 'role="alert"' in html
    assert ("empty" in html) if not q.strip() else ("the limit is 500" in html)
    assert "Latest headlines" in html


async def test_hostile_question_is_escaped(client):
    response = await client.get("/", params={"q": HOSTILE_SCRIPT + " " + HOSTILE_IMG})
    html = await response.text()
    assert "<script" not in html.lower() and "<img" not in html.lower()
    assert "&lt;script&gt;" in html


# -- health and method checks --------------------------------------------------------------------
async def test_healthz_reports_the_corpus_and_the_bot(client, service):
    response = await client.get("/healthz")
    assert response.status == 200
    data = await response.json()
    assert data["status"] == "ok"
    assert data["articles"] == 3
    assert data["passages"] == service.stats().passages > 40
    assert data["corpus_version"] == service.store.corpus_version()
    assert data["last_reload"] is not None
    assert data["discord_connected"] is True
    assert_security_headers(response)


async def test_healthz_without_a_bot_says_so(service):
    async with TestClient(TestServer(create_app(service))) as client:
        data = await (await client.get("/healthz")).json()
    assert data["discord_connected"] is None
    assert data["status"] == "ok"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", f"/articles/{BANK_ID}", "/healthz"])
async def test_nothing_can_be_written(client, method, path):
    response = await client.request(method, path, data=b"x=1")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    assert_security_headers(response)


async def test_head_requests_work(client):
    response = await client.head(f"/articles/{BANK_ID}")
    assert response.status == 200


# -- running ---------------------------------------------------------------------------------------
async def test_start_web_serves_until_cleanup(service):
    runner = await start_web(service, "127.0.0.1", 0, status=lambda: {"discord_connected": False})
    try:
        host, port = runner.addresses[0][:2]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/healthz") as response,
        ):
            data = await response.json()
        assert data["discord_connected"] is False
    finally:
        await runner.cleanup()


@pytest.mark.sqlite_only  # a file that is not there; on PostgreSQL, the next test
def test_serve_refuses_a_missing_database(tmp_path, capsys):
    code = serve_forever(Settings(), db=tmp_path / "missing.db", port=0)
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no database at" in err and "missing.db" in err
    assert not (tmp_path / "missing.db").exists()


def test_serve_refuses_a_postgres_database_that_does_not_exist(pg_cluster, tmp_path, capsys, monkeypatch):
    import psycopg

    monkeypatch.chdir(tmp_path)
    code = serve_forever(Settings(), db=pg_cluster.url("missing"), port=0)
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing" in err
    with psycopg.connect(pg_cluster.url()) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'missing'").fetchone() == (0,)


async def test_a_reload_by_another_process_is_picked_up(store_target, tmp_path):
    db = build_db(tmp_path, store_target)
    serving = NewsService(db, tmp_path / "articles", index_cache=tmp_path / "serving-cache")
    serving.open()
    try:
        async with TestClient(TestServer(create_app(serving, watch_every=0.05))) as client:
            before = (await (await client.get("/healthz")).json())["corpus_version"]
            (tmp_path / "articles" / "late.txt").write_text(
                "Late Edition\n\nA narwhal reached the harbour.\n"
            )
            other = NewsService(db, tmp_path / "articles", index_cache=tmp_path / "other-cache")
            await asyncio.to_thread(other.reload)
            other.close()
            for _ in range(100):
                data = await (await client.get("/healthz")).json()
                if data["corpus_version"] > before:
                    break
                await asyncio.sleep(0.05)
            assert data["corpus_version"] > before
            html = await (await client.get("/", params={"q": "narwhal"})).text()
            assert "Late Edition" in html.split("Latest headlines")[0]
    finally:
        serving.close()


def _serve(db: str, port: int, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_") and k != "DISCORD_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--db", db, "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_healthy(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if json.load(response)["status"] == "ok":
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("newsdesk serve did not answer /healthz")


def test_serve_stops_cleanly_on_ctrl_c_and_refuses_a_taken_port(store_target, tmp_path):
    db = build_db(tmp_path, store_target)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = _serve(db, port, tmp_path)
    try:
        _wait_healthy(proc, port)
        second = _serve(db, port, tmp_path)
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert err.strip().count("\n") == 0 and f"cannot serve on 127.0.0.1:{port}" in err
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert f"serving http://127.0.0.1:{port}/" in err
    assert "Traceback" not in err
