"""The web pages in a real browser: headless Chromium (Playwright) over ``newsdesk serve``.

Skipped when /usr/bin/chromium is missing, except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.data import REPO
from tests.web_corpus import (
    HOSTILE_ID,
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    LONG_READ_ID,
    LONG_READ_TITLE,
    QUESTION,
    TARGET_ORDINAL,
    build_db,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.both_stores  # the site is served from SQLite, then from PostgreSQL


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory, module_store_target):
    """``newsdesk serve`` over the test corpus, as a subprocess; yields its base URL."""
    folder = tmp_path_factory.mktemp("site")
    db = build_db(folder, module_store_target)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSDESK_") and k != "DISCORD_TOKEN"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    log = (folder / "serve.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--db", db, "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"newsdesk serve exited with {proc.returncode}: {log.read()}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    assert json.load(response)["status"] == "ok"
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("newsdesk serve did not answer /healthz within 30 s")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert proc.returncode == 0, output
    assert "serving http://127.0.0.1:" in output


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.dialogs = []

    def on_dialog(dialog) -> None:
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


def screenshot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")
    return path


def in_viewport(page, selector: str) -> dict:
    return page.evaluate(
        """(selector) => {
            const r = document.querySelector(selector).getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, height: window.innerHeight,
                    inside: r.top >= 0 && r.top < window.innerHeight && r.bottom > 0};
        }""",
        selector,
    )


def test_passage_link_scrolls_to_the_passage_with_the_terms_highlighted(site, page, tmp_path):
    url = f"{site}/articles/{LONG_READ_ID}?q={QUESTION.replace(' ', '+')}#p{TARGET_ORDINAL}"
    response = page.goto(url)
    assert response.status == 200
    headers = response.headers
    assert "default-src 'none'" in headers["content-security-policy"]
    target = page.locator(f"#p{TARGET_ORDINAL}")
    assert target.is_visible()
    box = in_viewport(page, f"#p{TARGET_ORDINAL}")
    assert box["inside"], box
    assert not in_viewport(page, "#p0")["inside"]  # the page really scrolled: the start is out of view
    marks = target.locator("mark").all_inner_texts()
    assert marks == ["quokka", "watched", "zeppelin"]
    assert page.locator("mark").count() == 3
    assert page.title().startswith(LONG_READ_TITLE)
    screenshot(page, tmp_path, "article")
    assert page.dialogs == []


def test_search_box_answers_a_typed_question(site, page, tmp_path):
    page.goto(f"{site}/")
    box = page.locator("input[name=q]")
    assert box.is_visible()
    box.fill(QUESTION)
    box.press("Enter")
    page.wait_for_url("**/?q=*")
    first = page.locator("ol.results > li").first
    assert first.locator("a.title").inner_text() == LONG_READ_TITLE
    excerpt = first.locator("blockquote").inner_text()
    assert "quokka stood beside the road" in excerpt
    assert set(first.locator("blockquote strong").all_inner_texts()) >= {"quokka", "zeppelin"}
    assert page.locator("input[name=q]").input_value() == QUESTION
    screenshot(page, tmp_path, "search")
    # The result leads to its passage.
    first.locator("a.title").click()
    page.wait_for_url(f"**/articles/{LONG_READ_ID}?q=*#p{TARGET_ORDINAL}")
    assert in_viewport(page, f"#p{TARGET_ORDINAL}")["inside"]
    assert page.locator(f"#p{TARGET_ORDINAL} mark").count() == 3
    screenshot(page, tmp_path, "search-result-followed")


def test_markup_in_an_article_is_shown_as_text_and_runs_nothing(site, page, tmp_path):
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    response = page.goto(f"{site}/articles/{HOSTILE_ID}")
    assert response.status == 200
    heading = page.locator("h1").inner_text()
    assert HOSTILE_SCRIPT in heading and HOSTILE_IMG in heading
    body = page.locator("#p0").inner_text()
    assert HOSTILE_SCRIPT in body and HOSTILE_IMG in body
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert not any("alert" in text for text in messages)
    screenshot(page, tmp_path, "hostile")


def test_markup_in_a_question_is_shown_as_text(site, page):
    page.goto(f"{site}/")
    page.locator("input[name=q]").fill(f"{HOSTILE_SCRIPT} {HOSTILE_IMG}")
    page.locator("button[type=submit]").click()
    page.wait_for_url("**/?q=*")
    assert HOSTILE_SCRIPT in page.locator("h1").inner_text()
    assert page.evaluate("document.querySelectorAll('script, img').length") == 0
    assert page.dialogs == []


def test_unknown_article_is_a_404_page(site, page):
    response = page.goto(f"{site}/articles/..%2F..%2Fetc%2Fpasswd")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    assert "root:" not in page.content()


def test_a_missing_browser_skips_here_but_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run"):
        _unavailable("no browser")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        _unavailable("no browser")
