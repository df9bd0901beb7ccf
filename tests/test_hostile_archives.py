"""Hostile archives: whatever lands in the corpus folder, an ingest finishes, reports each bad file or
record in one line, never loses an article a good record still gives, and never runs away with memory.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
import sqlite3
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from retrieval import NotNewsdeskDatabase, set_aside_damaged_database
from retrieval.errors import EmptyArchive, IngestRunning
from retrieval.index import BM25Index
from retrieval.ingest import MAX_FOLDER_DEPTH, ingest_folder
from retrieval.numba_cache import choose_cache_dir
from retrieval.parse import parse_file
from retrieval.parse.records import parse_jsonl
from retrieval.service import NewsService
from retrieval.sqlite_store import SQLiteStore, _sqlite_error
from retrieval.store import Store

from .data import REPO

pytestmark = pytest.mark.both_stores  # every test that opens a database: on SQLite and on PostgreSQL

BODY = "The comet passed close to the observatory at dawn, and astronomers recorded its tail."
# Other articles beside the one a test looks for, so that its words are rare enough to match.
OTHER_BODIES = [
    "Heavy rain flooded the valley roads and the council opened two shelters for families.",
    "The football club signed a young striker after a long summer of talks with his agent.",
    "Bakers in the old town raised the price of bread as flour grew dearer over the winter.",
]


def others(folder: Path) -> None:
    for n, body in enumerate(OTHER_BODIES):
        write(folder, f"other{n}.txt", article(f"Other story {n}", body))


def examples(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )


def write(folder: Path, rel: str, text: str | bytes) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def article(title: str, body: str = BODY) -> str:
    return f"{title}\n\n{body}\n"


def record(id_: str, title: str, body: str = BODY) -> str:
    return json.dumps({"id": id_, "title": title, "body": body})


def stored_ids(store: Store) -> set[str]:
    return {row[0] for row in store.query("SELECT id FROM articles")}


def encodable(text: str | None) -> bool:
    if text is None:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean(text: str | None) -> bool:
    """Valid UTF-8 and no control character but newlines (between paragraphs)."""
    return encodable(text) and not any(
        ord(ch) < 32 and ch != "\n" or 0x7F <= ord(ch) <= 0x9F for ch in text or ""
    )


@pytest.fixture
def folder(tmp_path) -> Path:
    path = tmp_path / "articles"
    path.mkdir()
    return path


@pytest.fixture
def store(stores, store_target) -> Store:
    return stores(store_target)


@pytest.fixture
def service_of(store_target, tmp_path):
    """``service_of(folder)``: a NewsService over ``folder`` on the test's database, closed at the end."""
    opened = []

    def open_one(folder: Path) -> NewsService:
        opened.append(NewsService(store_target, folder, index_cache=tmp_path / "index-cache"))
        return opened[-1]

    yield open_one
    for service in opened:
        service.close()


# -- 1. lone surrogates and control characters -------------------------------------------------------

SURROGATE_JSON = (
    '{"id": "a\\ud800b", "title": "okapi \\udfff title", "body": "okapi \\ud800 x and more words"}'
)

hostile_text = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0, max_codepoint=0x40),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.characters(min_codepoint=0x7F, max_codepoint=0x9F),
        st.sampled_from("abc \u200b\u2028\ufeff"),
    ),
    max_size=40,
)


@examples(200)
@given(id_=hostile_text, title=hostile_text, body=hostile_text)
@example(id_="\ud800", title="t\x1b[31m", body="x\x00y")
def test_any_json_string_becomes_clean_text_or_a_refusal(id_, title, body):
    data = json.dumps({"id": id_, "title": title, "body": body + " words here"}).encode()
    result = parse_file("a.jsonl", data)
    for art in result.articles:
        for value in (art.id, art.title, art.body, art.url, art.category):
            assert clean(value), repr(value)
        art.content_hash  # noqa: B018  (must not raise)
    assert len(result.articles) + len(result.refusals) == 1


def test_lone_surrogates_in_json_are_replaced_and_the_ingest_succeeds(folder, store):
    write(folder, "a.jsonl", SURROGATE_JSON + "\n")
    write(folder, "good.txt", article("Good article"))
    summary = ingest_folder(store, folder)
    assert summary.added == 2 and not summary.failures
    assert stored_ids(store) == {"a\ufffdb", "good"}


def test_control_characters_from_json_escapes_are_stripped(folder, store):
    write(
        folder,
        "a.json",
        json.dumps({"id": "x\u001b[2Jy", "title": "T\u0000itle", "body": "a\u001b[31mb\u0007c"}),
    )
    ingest_folder(store, folder)
    (art,) = store.headlines(5)
    assert (art.id, art.title) == ("x[2Jy", "Title")
    assert store.passages_for_article(art.id) == [(0, "a[31mbc")]


def test_a_file_name_that_is_not_utf8_is_refused_and_the_rest_ingests(folder, store):
    write(folder, "good.txt", article("Good article"))
    with open(os.path.join(os.fsencode(folder), b"bad\xff\xfe.txt"), "wb") as f:
        f.write(article("Bad name").encode())
    summary = ingest_folder(store, folder)
    assert stored_ids(store) == {"good"}
    assert [(f.path, f.reason) for f in summary.failures] == [
        ("bad\\xff\\xfe.txt", "the file name is not valid UTF-8; rename the file")
    ]


def test_a_newline_in_a_file_name_is_refused_and_shown_escaped(folder, store):
    write(folder, "a\nfailed: forged.txt", article("Forged"))
    summary = ingest_folder(store, folder)
    assert summary.added == 0
    (failure,) = summary.failures
    assert "\n" not in failure.path and failure.path == "a\\nfailed: forged.txt"


# -- 2. multi-member gzip, and the decompression limit -------------------------------------------------


def test_every_member_of_a_multi_member_gzip_is_read():
    a = gzip.compress((record("1", "One") + "\n").encode())
    b = gzip.compress((record("2", "Two") + "\n").encode())
    result = parse_file("c.jsonl.gz", a + b + b"\x00" * 512)  # cat a.gz b.gz, then tape padding
    assert [x.id for x in result.articles] == ["1", "2"] and not result.refusals


@examples(60)
@given(members=st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_random_gzip_members_never_raise(members):
    data = b"".join(gzip.compress(m) for m in members)
    result = parse_file("r.jsonl.gz", data)
    assert all(clean(a.body) for a in result.articles)
    assert result.articles or result.refusals


def test_a_gzip_bomb_stops_at_the_file_limit_without_expanding_it_all():
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = comp.compress(b"\n" * 50_000_000) + comp.flush()
    result = parse_file("b.jsonl.gz", bomb, max_file_bytes=1_000_000)
    assert [r.reason for r in result.refusals] == ["compressed file expands to over 1.0 MB"]


def test_records_past_the_limit_per_file_are_refused_in_one_line():
    text = "\n".join(record(str(n), f"Title {n}") for n in range(8))
    result = parse_jsonl(text, relpath="r.jsonl", stem="r", check_size=lambda a: None, max_records=5)
    assert len(result.articles) == 5
    assert [r.reason for r in result.refusals] == [
        "more than 5 records in one file; the rest were not read (split the file)"
    ]


@pytest.mark.parametrize("item", [b"{}", b'"ab"', b"1.5", b"[]"])
@pytest.mark.parametrize("name", ["t.json", "t.jsonl"])
def test_a_json_document_of_millions_of_tiny_values_is_refused_before_decoding(item, name, monkeypatch):
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("decoded"))
    data = b'{"body": [' + (item + b",") * 1_000_000 + item + b"]}\n"
    result = parse_file(name, data, max_article_bytes=10_000_000)
    assert not result.articles
    assert [r.reason for r in result.refusals] == ["JSON holds over 1,000,000 values (split the file)"]


def test_a_file_over_the_limit_is_refused_from_its_size_before_reading(folder, store, monkeypatch):
    big = folder / "huge.txt"
    with open(big, "wb") as f:
        f.truncate(3_000_000_000)  # sparse: 3 GB that take no room
    write(folder, "good.txt", article("Good article"))
    reads = []
    real_open = open

    def spy(path, *args, **kwargs):
        reads.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    summary = ingest_folder(store, folder)
    assert stored_ids(store) == {"good"}
    assert [(f.path, f.reason) for f in summary.failures] == [
        ("huge.txt", "file is 3,000,000,000 bytes, over the 32,000,000 byte file limit")
    ]
    assert str(big) not in reads


# -- 3. one bad record keeps what it gave ------------------------------------------------------------


def test_one_bad_line_keeps_the_article_it_gave_until_the_line_is_really_gone(folder, store):
    lines = [record("a", "Alpha"), record("b", "Beta"), record("c", "Gamma")]
    path = write(folder, "feed.jsonl", "\n".join(lines) + "\n")
    assert ingest_folder(store, folder).added == 3

    path.write_text("\n".join([lines[0], '{"id": "b", "title": "Beta", broken', lines[2]]) + "\n")
    first = ingest_folder(store, folder)
    assert stored_ids(store) == {"a", "b", "c"} and first.removed == 0
    assert [f.path for f in first.failures] == ["feed.jsonl#2"]
    again = ingest_folder(store, folder)  # still reported, still kept
    assert [f.path for f in again.failures] == ["feed.jsonl#2"] and stored_ids(store) == {"a", "b", "c"}

    path.write_text("\n".join([lines[0], lines[2]]) + "\n")  # the record is really gone
    gone = ingest_folder(store, folder)
    assert gone.removed == 1 and stored_ids(store) == {"a", "c"} and not gone.failures


# -- 4. the same id in two files ---------------------------------------------------------------------


def test_when_the_winning_file_goes_the_other_copy_takes_over(folder, store):
    write(folder, "a.json", record("same", "From A"))
    write(folder, "b.json", record("same", "From B"))
    first = ingest_folder(store, folder)
    assert first.added == 1 and [f.path for f in first.failures] == ["b.json"]
    assert store.article("same").title == "From A"
    assert ingest_folder(store, folder).failures  # reported every time, not hidden as unchanged

    (folder / "a.json").unlink()
    after = ingest_folder(store, folder)
    assert store.article("same").title == "From B" and store.article("same").source == "b.json"
    assert after.changed == 1 and after.removed == 0 and not after.failures


# -- 5. an empty archive -----------------------------------------------------------------------------


def test_an_empty_folder_ingests_to_an_empty_archive_that_says_so(service_of, folder):
    service = service_of(folder)
    summary = service.reload()
    assert (summary.added, summary.failed) == (0, 0)
    with pytest.raises(EmptyArchive, match="no articles yet"):
        service.search("comet")
    assert service.headlines(5, query="comet") == []


def test_removing_the_last_file_is_applied(service_of, folder):
    write(folder, "only.txt", article("Only one"))
    others(folder)
    service = service_of(folder)
    service.reload()
    assert service.search("comet").results
    for path in folder.iterdir():
        path.unlink()
    assert service.reload().removed == 4
    assert service.store.counts()["articles"] == 0
    with pytest.raises(EmptyArchive):
        service.search("comet")


# -- hostile folders ---------------------------------------------------------------------------------


def test_links_out_of_the_corpus_folder_are_not_followed(tmp_path, folder, store):
    secret = write(tmp_path, "secret.txt", article("Secret", "root password hunter2 in the shadow file"))
    write(folder, "good.txt", article("Good article"))
    (folder / "shadow.txt").symlink_to(secret)
    (folder / "inside.txt").symlink_to(folder / "good.txt")
    (folder / "etc").symlink_to(tmp_path)
    summary = ingest_folder(store, folder)
    assert stored_ids(store) == {"good", "inside"}
    assert sorted(f.path for f in summary.failures) == ["etc", "shadow.txt"]


def test_folders_nested_too_deep_are_one_failure(folder, store):
    deep = "/".join(["d"] * (MAX_FOLDER_DEPTH + 3))
    write(folder, f"{deep}/x.txt", article("Too deep"))
    write(folder, "good.txt", article("Good article"))
    summary = ingest_folder(store, folder)
    assert stored_ids(store) == {"good"}
    (failure,) = summary.failures
    assert failure.reason == f"folder nested more than {MAX_FOLDER_DEPTH} levels deep; not read"


def test_an_unreadable_sub_folder_is_one_failure_and_keeps_what_it_gave(folder, store, monkeypatch):
    write(folder, "locked/a.txt", article("Locked away"))
    write(folder, "open/b.txt", article("Out in the open"))
    ingest_folder(store, folder)
    real_scandir = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    write(folder, "open/c.txt", article("Another one"))
    summary = ingest_folder(store, folder)
    assert [(f.path, f.reason) for f in summary.failures] == [
        ("locked/", "cannot read the folder: Permission denied")
    ]
    assert stored_ids(store) == {"locked/a", "open/b", "open/c"} and summary.removed == 0


# -- a second ingest at the same time ----------------------------------------------------------------


def test_a_second_ingest_is_told_another_is_running_before_it_reads_anything(
    stores, store_target, folder, monkeypatch
):
    write(folder, "a.txt", article("Alpha"))
    first, second = stores(store_target), stores(store_target)
    monkeypatch.setattr("retrieval.ingest.scan_corpus", lambda *a, **k: pytest.fail("scanned while locked"))
    with first.ingest_lock(), pytest.raises(IngestRunning, match="another ingest into .* is running"):
        ingest_folder(second, folder)


# -- the database's identity -------------------------------------------------------------------------


def _database_of(tmp_path: Path, name: str, title: str, body: str) -> Path:
    corpus = tmp_path / f"{name}-corpus"
    write(corpus, "x.txt", article(title, body))
    others(corpus)
    service = NewsService(tmp_path / f"{name}.db", corpus)
    assert service.reload().corpus_version == 1
    service.close()
    with sqlite3.connect(tmp_path / f"{name}.db") as conn:  # the whole database in the one file, to copy
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return tmp_path / f"{name}.db"


@pytest.mark.sqlite_only  # a file copied over the database file: PostgreSQL has no file to copy
def test_a_database_replaced_by_another_at_the_same_version_is_picked_up(tmp_path):
    a = _database_of(tmp_path, "a", "Comet news", BODY)
    b = _database_of(tmp_path, "b", "Harbour news", "The harbour master closed the quay to ferries today.")
    live = tmp_path / "live.db"
    live.write_bytes(a.read_bytes())
    service = NewsService(live, tmp_path / "a-corpus")
    try:
        assert service.search("comet").results
        copy = tmp_path / "incoming.db"
        copy.write_bytes(b.read_bytes())
        os.replace(copy, live)  # how readers on other machines receive a new corpus
        assert service.refresh_if_changed()
        assert service.snapshot.version == 1
        assert service.search("harbour quay").results[0].title == "Harbour news"
    finally:
        service.close()


@pytest.mark.sqlite_only  # the database file's bytes overwritten: PostgreSQL has no file to overwrite
def test_a_database_overwritten_in_place_at_the_same_version_is_picked_up(tmp_path):
    a = _database_of(tmp_path, "a", "Comet news", BODY)
    b = _database_of(tmp_path, "b", "Harbour news", "The harbour master closed the quay to ferries today.")
    live = tmp_path / "live.db"
    live.write_bytes(a.read_bytes())
    service = NewsService(live, tmp_path / "a-corpus")
    try:
        assert service.search("comet").results
        service.store.close()
        live.write_bytes(b.read_bytes())  # same file, same inode, same version number
        service.store = SQLiteStore(live, create=False)
        assert service.refresh_if_changed()
        assert service.search("harbour quay").results[0].title == "Harbour news"
    finally:
        service.close()


# -- errors by type ----------------------------------------------------------------------------------


def _sqlite_exc(text: str, name: str, code: int) -> sqlite3.Error:
    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorname = name
    exc.sqlite_errorcode = code
    return exc


@pytest.mark.parametrize(
    ("text", "name", "code", "expected"),
    [
        ("database is locked", "SQLITE_BUSY", 5, "locked by another writer"),
        ("no such table: full_results", "SQLITE_ERROR", 1, "database error on"),
        ("attempt to write a readonly database", "SQLITE_READONLY_DBMOVED", 1032, "read-only"),
        ("database or disk is full", "SQLITE_FULL", 13, "is full"),
        ("disk I/O error", "SQLITE_IOERR_WRITE", 778, "database error on"),
        ("database disk image is malformed", "SQLITE_CORRUPT", 11, "is damaged"),
    ],
)
def test_sqlite_errors_are_classified_by_their_code_not_their_text(text, name, code, expected):
    assert expected in str(_sqlite_error(Path("n.db"), _sqlite_exc(text, name, code)))


def test_a_bug_while_loading_the_index_surfaces_instead_of_a_silent_rebuild(service_of, folder, monkeypatch):
    write(folder, "a.txt", article("Alpha"))
    service = service_of(folder)
    service.reload()

    def broken(directory):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(BM25Index, "load", broken)
    with pytest.raises(ZeroDivisionError):
        service.open()


# -- a read-only install and home --------------------------------------------------------------------


def test_numba_cache_falls_back_when_neither_the_install_nor_home_can_be_written(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "cache"))
    choose_cache_dir(blocker)  # blocker/__pycache__ cannot be created
    chosen = Path(os.environ["NUMBA_CACHE_DIR"])
    assert chosen.is_dir() and os.access(chosen, os.W_OK)
    assert chosen.stat().st_mode & 0o077 == 0  # private, never a shared predictable folder


# -- parse without an import cycle -------------------------------------------------------------------


def _imports(module: str) -> set[str]:
    tree = ast.parse((REPO / "retrieval" / "parse" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize(("module", "other"), [("plaintext", "scraped"), ("scraped", "plaintext")])
def test_format_modules_do_not_import_each_other(module, other):
    assert not any(name.endswith(f"parse.{other}") for name in _imports(module))
    assert "retrieval.parse.scraped" not in _imports("records")


def test_only_a_damaged_newsdesk_database_is_set_aside(tmp_path):
    assert set_aside_damaged_database(tmp_path / "none.db") is None  # nothing there, nothing moved

    healthy = tmp_path / "healthy.db"
    SQLiteStore(healthy).close()
    assert set_aside_damaged_database(healthy) is None and healthy.exists()

    damaged = tmp_path / "n.db"
    damaged.write_bytes(b"garbage" * 1000)
    (tmp_path / "n.db.index").mkdir()  # its index folder beside it: this was a newsdesk database
    aside = set_aside_damaged_database(damaged)
    assert aside == tmp_path / "n.db.damaged"
    assert aside.read_bytes() == b"garbage" * 1000 and not damaged.exists()

    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n" * 50)
    with pytest.raises(NotNewsdeskDatabase):
        set_aside_damaged_database(notes)
    assert notes.read_text() == "my notes\n" * 50
    assert not (tmp_path / "notes.txt.damaged").exists()
