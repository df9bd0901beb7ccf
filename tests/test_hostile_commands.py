"""Hostile settings, files and networks, as a user meets them on the command line: one line, the right
exit status, never a traceback, never a changed file that is not newsdesk's, never a runaway process.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, load_settings
from retrieval.ingest import ingest_folder
from retrieval.links import LinkPolicy, LinkTemplateError, validate_template
from retrieval.store import describe_target, open_store

from .cli_harness import newsdesk as run_newsdesk
from .data import REPO

pytestmark = pytest.mark.both_stores  # every test that opens a database: on SQLite and on PostgreSQL

BODY = "The comet passed close to the observatory at dawn, and astronomers recorded its tail."
ONE_GB = 1024**3


def newsdesk(*args, timeout=180, **kwargs):
    return run_newsdesk(*args, timeout=timeout, **kwargs)


def one_line(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(folder: Path, rel: str, data: str | bytes) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- a file that is not a newsdesk database ----------------------------------------------------------


def _unrelated_sqlite(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes (text) VALUES ('buy milk')")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["sqlite of something else", "text file"])
@pytest.mark.parametrize("command", [["ask", "comet"], ["headlines"]])
def test_reading_commands_never_change_a_file_that_is_not_a_newsdesk_database(tmp_path, kind, command):
    path = tmp_path / "notes.db"
    before = (
        _unrelated_sqlite(path)
        if kind.startswith("sqlite")
        else write(tmp_path, "notes.db", "my notes\n" * 50).read_bytes()
    )
    result = newsdesk(*command, "--db", str(path), cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result)
    assert "is not a newsdesk database" in line and "--rebuild" not in line
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # no -wal, -shm or index beside it


def test_ingest_rebuild_never_moves_a_file_that_is_not_a_newsdesk_database(tmp_path, sample_corpus):
    path = write(tmp_path, "notes.txt", "my notes\n" * 50)
    result = newsdesk("ingest", str(sample_corpus), "--db", str(path), "--rebuild", cwd=tmp_path)
    assert result.returncode == 1 and "is not a newsdesk database" in one_line(result)
    assert path.read_text() == "my notes\n" * 50
    assert not (tmp_path / "notes.txt.damaged").exists()


def test_serve_refuses_a_file_that_is_not_a_newsdesk_database(tmp_path):
    path = tmp_path / "notes.db"
    before = _unrelated_sqlite(path)
    result = newsdesk("serve", "--db", str(path), "--port", "0", cwd=tmp_path)
    assert result.returncode == 1 and "is not a newsdesk database" in one_line(result)
    assert path.read_bytes() == before


def _postgres_tables(url: str) -> dict[str, list[tuple]]:
    import psycopg

    with psycopg.connect(url) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                " ORDER BY table_name"
            )
        ]
        return {name: conn.execute(f'SELECT * FROM "{name}" ORDER BY 1').fetchall() for name in names}


@pytest.mark.parametrize(
    "command",
    [["ask", "comet"], ["headlines"], ["serve", "--port", "0"], ["ingest", "CORPUS", "--rebuild"]],
    ids=["ask", "headlines", "serve", "ingest --rebuild"],
)
def test_commands_never_change_a_postgres_database_of_another_program(
    pg_url, tmp_path, sample_corpus, command
):
    """The PostgreSQL side of the tests above: another program's ``articles`` table where ours would go."""
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE articles (id serial PRIMARY KEY, text text)")
        conn.execute("INSERT INTO articles (text) VALUES ('buy milk')")
    args = [str(sample_corpus) if a == "CORPUS" else a for a in command]
    result = newsdesk(*args, "--db", pg_url, cwd=tmp_path)
    assert result.returncode == 1 and "holds tables of something else" in one_line(result)
    assert "--rebuild" not in one_line(result)
    assert _postgres_tables(pg_url) == {"articles": [(1, "buy milk")]}


@pytest.mark.parametrize("command", [["ask", "comet"], ["headlines"], ["serve", "--port", "0"]])
def test_reading_commands_add_nothing_to_a_postgres_database_without_newsdesk_tables(
    pg_url, tmp_path, command
):
    import psycopg

    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, text text)")
        conn.execute("INSERT INTO notes (text) VALUES ('buy milk')")
    result = newsdesk(*command, "--db", pg_url, cwd=tmp_path)
    assert result.returncode == 1 and "has no newsdesk tables yet" in one_line(result)
    assert _postgres_tables(pg_url) == {"notes": [(1, "buy milk")]}


# -- an empty archive --------------------------------------------------------------------------------


def test_an_empty_archive_ingests_and_answers_in_one_line(store_target, tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    db = store_target
    ingest = newsdesk("ingest", str(corpus), "--db", str(db), "--json", cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 0
    ask = newsdesk("ask", "comet", "--db", str(db), cwd=tmp_path)
    assert ask.returncode == 1 and "no articles yet" in one_line(ask)
    headlines = newsdesk("headlines", "--db", str(db), "--json", cwd=tmp_path)
    assert headlines.returncode == 0 and json.loads(headlines.stdout) == []


def test_run_in_the_terminal_starts_on_an_empty_archive(store_target, tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    env = {"NEWSDESK_DB": store_target, "NEWSDESK_CORPUS_DIR": str(corpus)}
    result = newsdesk("run", cwd=tmp_path, env=env, stdin="comet?\n")
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "no articles yet" in result.stderr


def test_serve_starts_on_an_empty_archive_and_says_no_articles_yet(store_target, tmp_path):
    corpus = tmp_path / "articles"
    corpus.mkdir()
    db = store_target
    assert newsdesk("ingest", str(corpus), "--db", str(db), cwd=tmp_path).returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--db", str(db), "--port", str(port)],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = None
        deadline = time.monotonic() + 60
        while page is None and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/?q=comet", timeout=2) as response:
                    page = (response.status, response.read().decode())
            except OSError:
                time.sleep(0.1)
        assert page is not None and page[0] == 200 and "no articles yet" in page[1]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err


# -- settings ----------------------------------------------------------------------------------------

WIDTHS = ["{id:>100000000}", "{id:>99999999999}", "{source:^50}", "{id!r}", "{category:x<9}", "{id:,}"]


@pytest.mark.parametrize("field", WIDTHS)
def test_link_template_formats_and_widths_are_refused_in_one_line(tmp_path, field):
    env = {"NEWSDESK_LINK_TEMPLATE": f"https://news.example.org/{field}"}
    result = newsdesk("headlines", "--db", str(tmp_path / "none.db"), cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert one_line(result).startswith("newsdesk: NEWSDESK_LINK_TEMPLATE is refused")


@settings(max_examples=200, deadline=None)
@given(spec=st.text(alphabet="%0123456789-_#^<>=+ .,YmdHMSaAbBjz", min_size=1, max_size=12))
def test_a_date_format_in_a_link_is_strftime_codes_only(spec):
    template = f"https://news.example.org/{{published:{spec}}}/{{id}}"
    try:
        validate_template(template)
    except LinkTemplateError:
        return
    # accepted: no flag or width, so a filled link stays short
    url = LinkPolicy(template).url_for(
        article_id="a/1", url=None, source="a/1.txt", published="2016-06-21T12:02:16", category=None
    )
    assert url is None or len(url) < 400


def test_the_documented_date_format_is_still_accepted():
    validate_template("https://news.example.org/{published:%Y/%m/%d}/{id}")


def test_dev_guild_takes_one_id(tmp_path):
    with pytest.raises(ConfigError, match="NEWSDESK_DEV_GUILD must be one guild id"):
        load_settings({"NEWSDESK_DEV_GUILD": "1,2"})
    result = newsdesk("headlines", cwd=tmp_path, env={"NEWSDESK_DEV_GUILD": "1,2"})
    assert result.returncode == 2 and "NEWSDESK_DEV_GUILD" in one_line(result)


def test_discord_unreachable_at_start_is_one_line_and_exit_1(store_target, tmp_path, sample_corpus):
    script = (
        "import sys, discord.http\n"
        "discord.http.Route.BASE = 'http://127.0.0.1:9/api/v10'\n"  # nothing listens on the discard port
        "from bot.cli import main\n"
        "sys.exit(main(['run']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    env.update(
        PYTHONPATH=str(REPO),
        DISCORD_TOKEN="x" * 59,
        NEWSDESK_DB=store_target,
        NEWSDESK_CORPUS_DIR=str(sample_corpus),
        NEWSDESK_LOG_LEVEL="ERROR",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert one_line(result).startswith("newsdesk: cannot reach Discord (")


# -- one ingest at a time, and the text summary -------------------------------------------------------


def test_a_second_ingest_says_another_is_running(stores, store_target, tmp_path, sample_corpus):
    store = stores(store_target)
    with store.ingest_lock():
        result = newsdesk("ingest", str(sample_corpus), "--db", store_target, cwd=tmp_path)
    assert result.returncode == 1
    line = one_line(result)  # PostgreSQL adds which machine and process holds it
    assert line.startswith(f"newsdesk: another ingest into {describe_target(store_target)} is running")
    assert line.endswith("; try again when it is done")


def test_a_file_name_cannot_forge_a_line_of_the_summary(store_target, tmp_path):
    corpus = tmp_path / "articles"
    write(corpus, "good.txt", f"Good\n\n{BODY}\n")
    write(corpus, "x\n  failed: everything.txt: forged", "Forged\n\nbody\n")
    result = newsdesk("ingest", str(corpus), "--db", store_target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("  failed: x\\n  failed: everything.txt")


# -- aiohttp's own error pages ------------------------------------------------------------------------


@pytest.mark.sqlite_only  # aiohttp answers these before any page reads the database
async def test_malformed_requests_get_the_security_headers_too(service):
    from bot.web import start_web
    from bot.web.app import SECURITY_HEADERS

    runner = await start_web(service, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        for raw in (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", b"NOT HTTP\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw)
            await writer.drain()
            head = (await reader.read(65536)).split(b"\r\n\r\n")[0].decode()
            writer.close()
            assert head.startswith("HTTP/1.0 400") or head.startswith("HTTP/1.1 400")
            for name, value in SECURITY_HEADERS.items():
                assert f"{name}: {value}" in head
    finally:
        await runner.cleanup()


# -- fuzz: whatever files, the ingest finishes ------------------------------------------------------

GOOD = {
    "good.txt": f"Good article\n\n{BODY}\n",
    "rain.txt": "Rain\n\nHeavy rain flooded the valley roads and the council opened two shelters.\n",
    "club.txt": "Club\n\nThe football club signed a young striker after a long summer of talks.\n",
}
NAMES = ["a.txt", "b.json", "c.jsonl", "d.jsonl.gz", "e.json.gz", "f.md", "g.txt.gz", "h.ndjson"]
json_docs = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "title", "body", "text", "url", "date", "articles", "related"])
            | st.text(max_size=5),
            kids,
            max_size=5,
        )
    ),
    max_leaves=20,
)
blobs = st.one_of(
    st.binary(max_size=2000),
    st.lists(st.binary(max_size=300), min_size=1, max_size=4).map(
        lambda ms: b"".join(gzip.compress(m) for m in ms)
    ),
    json_docs.map(lambda doc: json.dumps(doc).encode()),
    st.lists(json_docs, min_size=1, max_size=5).map(lambda docs: "\n".join(map(json.dumps, docs)).encode()),
)


def _good_corpus(root: Path) -> Path:
    corpus = root / "articles"
    for name, text in GOOD.items():
        write(corpus, name, text)
    return corpus


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_target(request, tmp_path_factory):
    """``fresh_target()``: a new empty database each call (one per Hypothesis example), on each back end."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_cluster").new_database
    return lambda: str(tmp_path_factory.mktemp("fuzz") / "n.db")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.tuples(st.sampled_from(NAMES), blobs), min_size=1, max_size=6))
def test_fuzzed_files_never_stop_an_ingest_and_the_good_files_are_ingested(
    tmp_path_factory, fresh_target, files
):
    root = tmp_path_factory.mktemp("fuzz")
    corpus = _good_corpus(root)
    for n, (name, blob) in enumerate(files):
        write(corpus, f"f{n}/{name}", blob)
    store = open_store(fresh_target())
    try:
        summary = ingest_folder(store, corpus)
        assert {"good", "rain", "club"} <= {h.id for h in store.headlines(100)}
        assert all(f.path.isprintable() and "\n" not in f.reason for f in summary.failures)
        again = ingest_folder(store, corpus)  # and a second run over the same folder changes nothing
        assert (again.added, again.changed, again.removed) == (0, 0, 0)
    finally:
        store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fuzzed_folder_through_the_command_line(store_target, tmp_path, seed):
    rng = random.Random(seed)
    corpus = _good_corpus(tmp_path)
    for n in range(12):
        blob = rng.randbytes(rng.randrange(3000))
        if n % 3 == 1:
            blob = b"".join(
                gzip.compress(rng.randbytes(rng.randrange(200))) for _ in range(rng.randrange(1, 4))
            )
        write(corpus, f"r{n}/{rng.choice(NAMES)}", blob)
    result = newsdesk("ingest", str(corpus), "--db", store_target, "--json", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["added"] >= 3
    ask = newsdesk("ask", "comet observatory", "--db", store_target, "--json", cwd=tmp_path)
    assert ask.returncode == 0 and json.loads(ask.stdout)["results"][0]["article_id"] == "good"


# -- memory: no input under 10 MB takes newsdesk over 1 GB ---------------------------------------------

MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(done.returncode, peak)
sys.stderr.write(done.stderr)
"""


def _gzip(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def _tiny_records(n: int) -> bytes:
    return b"".join(b'{"body":"a"}\n' for _ in range(n))


def _big_articles(count: int, size: int) -> bytes:
    rng = random.Random(7)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randrange(3, 10))) for _ in range(50_000)
    ]
    lines = []
    for n in range(count):
        text, length = [], 0
        while length < size:
            paragraph = " ".join(rng.choices(words, k=60)) + "."
            text.append(paragraph)
            length += len(paragraph) + 2
        lines.append(json.dumps({"id": f"big{n}", "title": f"Big {n}", "body": "\n\n".join(text)[:size]}))
    return ("\n".join(lines) + "\n").encode()


HOSTILE = {
    "1 MB gzip that expands to 1 GB": lambda: ("bomb.jsonl.gz", _gzip(b" " * 1_000_000_000)),
    "119 KB gzip of 2 million tiny records": lambda: ("tiny.jsonl.gz", _gzip(_tiny_records(2_000_000))),
    "2.4 MB gzip of tiny objects": lambda: ("objs.json.gz", _gzip(b"[" + b"{}," * 40_000_000 + b"{}]")),
    "gzip of a JSON list of 1.99 million small objects": lambda: (
        "many.json.gz",
        _gzip(b"[" + b'{"b":"ab"},' * 1_990_000 + b'{"b":"ab"}]'),
    ),
    "gzip of a JSON list of 6 million short strings": lambda: (
        "strings.json.gz",
        _gzip(b'{"body": [' + b'"ab",' * 6_000_000 + b'"ab"]}'),
    ),
    "JSON of short strings just under the value limit": lambda: (
        "under.json",
        b'{"title": "t", "body": [' + b'"ab",' * 999_000 + b'"ab"]}',
    ),
    "text file of a million one-word lines": lambda: ("lines.txt", b"Title\n\n" + b"word\n" * 1_900_000),
    "3 GB sparse text file": None,
    "10 MB of one-line JSON": lambda: ("line.jsonl", b'{"body":"' + b"word " * 1_999_990 + b'"}\n'),
    "9.5 MB of articles at the size limit": lambda: ("big.jsonl", _big_articles(5, 1_900_000)),
}


# The cases whose articles reach the store: the others are refused while parsing, before any database.
STORED = ["text file of a million one-word lines", "9.5 MB of articles at the size limit"]


@pytest.mark.sqlite_only  # the parsing limits, whatever the store; on PostgreSQL the cases it stores, next
@pytest.mark.parametrize("case", list(HOSTILE))
def test_no_small_input_takes_newsdesk_over_1_gb(tmp_path, case):
    ingest_peak_under_1_gb(str(tmp_path / "n.db"), tmp_path, case)


@pytest.mark.parametrize("case", STORED)
def test_no_small_input_stored_in_postgres_takes_newsdesk_over_1_gb(pg_url, tmp_path, case):
    ingest_peak_under_1_gb(pg_url, tmp_path, case)


def ingest_peak_under_1_gb(store_target: str, tmp_path: Path, case: str) -> None:
    corpus = tmp_path / "articles"
    write(corpus, "good.txt", f"Good article\n\n{BODY}\n")
    if HOSTILE[case] is None:
        with open(corpus / "huge.txt", "wb") as f:
            f.truncate(3_000_000_000)
    else:
        name, data = HOSTILE[case]()
        assert len(data) < 10_000_000
        write(corpus, name, data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    cmd = [sys.executable, "-m", "bot.cli", "ingest", str(corpus), "--db", store_target, "--json"]
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    status, peak = (int(x) for x in result.stdout.split())
    print(f"{case}: peak RSS {peak / 1e6:.0f} MB")
    assert status == 0, result.stderr
    assert peak < ONE_GB, f"{case}: peak RSS {peak / 1e6:.0f} MB"
