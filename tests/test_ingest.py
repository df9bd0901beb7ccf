"""Ingest: a folder in, the store brought in line, in one transaction; broken files reported, not fatal."""

from __future__ import annotations

import pytest

from retrieval.errors import CorpusError, StoreError
from retrieval.ingest import ingest_folder
from retrieval.service import NewsService
from retrieval.sqlite_store import SQLiteStore
from tests.data import SEED

pytestmark = pytest.mark.both_stores


def write(folder, name, text, encoding="utf-8"):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def plain(title, *paragraphs):
    return title + "\n\n" + "\n\n".join(paragraphs)


LONG = (
    "The council met on Tuesday to discuss the new bridge over the river, which will cost 4 million pounds."
)


@pytest.mark.shared_corpus
def test_bbc_corpus_ingests_without_failures_and_second_run_changes_nothing(
    bbc_folder, stores, store_target, tmp_path
):
    store = stores(store_target)
    first = ingest_folder(store, bbc_folder)
    assert (first.added, first.failed) == (2225, 0), first.failures[:3]
    second = ingest_folder(store, bbc_folder)
    assert (second.added, second.changed, second.unchanged, second.removed, second.failed) == (
        0,
        0,
        2225,
        0,
        0,
    )
    assert second.corpus_version == first.corpus_version
    counts = store.counts()
    assert counts["articles"] == 2225
    # 98 articles repeat another one word for word: their text is stored once.
    assert counts["texts"] < 2225 - 90
    assert store.article("sport/199") is not None
    assert "£" in " ".join(text for _, text in store.passages_for_article("sport/199"))


def test_readme_beside_articles_is_not_an_article(stores, store_target, tmp_path):
    folder = tmp_path / "bbc"  # the BBC layout: a README.TXT beside the category folders
    write(
        folder,
        "README.TXT",
        "Consists of 2225 documents from the BBC news website.\n\nClass labels: business",
    )
    write(folder, "business/001.txt", plain("Ad sales boost profit", LONG))
    store = stores(store_target)
    summary = ingest_folder(store, folder)
    assert (summary.added, summary.failed) == (1, 0)
    assert store.article("README") is None


def test_hostile_folder_ingests_the_good_files_and_names_each_bad_one(stores, store_target, tmp_path):
    folder = tmp_path / "corpus"
    seed = SEED.read_bytes()
    write(folder, "good/seed.txt", seed)
    write(
        folder,
        "good/cp1252.txt",
        plain("Caf\u00e9 prices rise", "A coffee now costs \u00a33.20 in the centre. " * 3),
        encoding="cp1252",
    )
    write(
        folder,
        "good/bom-crlf.txt",
        b"\xef\xbb\xbf" + plain("Bridge vote", LONG).replace("\n", "\r\n").encode(),
    )
    write(folder, "good/truncated-dump.txt", seed[: seed.index(b'"title"', seed.index(b"string(")) + 30])
    write(folder, "bad/empty.txt", b"")
    write(folder, "bad/binary.txt", bytes(range(256)) * 20)
    write(folder, "bad/huge.txt", plain("Huge", "word " * 1_100_000))
    summary = ingest_folder(stores(store_target), folder)
    assert summary.added == 4
    failed = {f.path: f.reason for f in summary.failures}
    assert set(failed) == {"bad/empty.txt", "bad/binary.txt", "bad/huge.txt"}
    assert "empty" in failed["bad/empty.txt"]
    assert "binary" in failed["bad/binary.txt"]
    assert "MB" in failed["bad/huge.txt"]


def test_added_changed_removed_are_counted_and_bump_the_version(stores, store_target, tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "a.txt", plain("Alpha", LONG))
    write(folder, "b.txt", plain("Beta", LONG + " Beta."))
    store = stores(store_target)
    v1 = ingest_folder(store, folder).corpus_version
    write(folder, "a.txt", plain("Alpha", LONG + " Changed."))
    (folder / "b.txt").unlink()
    write(folder, "c.txt", plain("Gamma", LONG + " Gamma."))
    summary = ingest_folder(store, folder)
    assert (summary.added, summary.changed, summary.unchanged, summary.removed) == (1, 1, 0, 1)
    assert summary.corpus_version == v1 + 1
    assert store.article("b") is None
    assert "Changed" in store.passages_for_article("a")[-1][1]


def test_a_file_that_breaks_keeps_what_it_gave_before(stores, store_target, tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "a.txt", plain("Alpha", LONG))
    store = stores(store_target)
    ingest_folder(store, folder)
    write(folder, "a.txt", b"")
    summary = ingest_folder(store, folder)
    assert summary.removed == 0 and summary.failed == 1
    assert store.article("a") is not None


def test_the_same_text_under_two_names_is_stored_once(stores, store_target, tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "x/1.txt", plain("Twin", LONG))
    write(folder, "y/2.txt", plain("Twin", LONG))
    store = stores(store_target)
    summary = ingest_folder(store, folder)
    assert summary.added == 2
    assert store.counts() == {"articles": 2, "texts": 1, "passages": len(store.passages_for_article("x/1"))}
    (folder / "x/1.txt").unlink()
    ingest_folder(store, folder)
    assert store.passages_for_article("y/2"), "the remaining name still has the text"


def test_failure_before_commit_leaves_the_database_as_it_was(stores, store_target, tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "a.txt", plain("Alpha", LONG))
    store = stores(store_target)
    ingest_folder(store, folder)
    before = (store.corpus_version(), store.counts(), store.known_files())
    write(folder, "b.txt", plain("Beta", LONG + " Beta."))

    def explode(state, writer):
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        ingest_folder(store, folder, before_commit=explode)
    assert (store.corpus_version(), store.counts(), store.known_files()) == before
    assert store.last_run()["status"] == "failed"


def test_missing_folder_is_a_clear_error(stores, store_target, tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        ingest_folder(stores(store_target), tmp_path / "nope")


def test_database_in_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "no" / "such" / "n.db")


def test_a_file_that_is_not_a_database_is_refused_and_left_unchanged(tmp_path):
    bad = tmp_path / "n.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is not a newsdesk database") as refused:
        SQLiteStore(bad)
    assert "--rebuild" not in str(refused.value)
    assert bad.read_bytes() == b"this is not sqlite" * 100


def test_a_damaged_newsdesk_database_is_reported_with_how_to_rebuild(tmp_path):
    bad = tmp_path / "n.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    (tmp_path / "n.db.index").mkdir()  # its index beside it: this was a newsdesk database
    with pytest.raises(StoreError, match="--rebuild"):
        SQLiteStore(bad)


def test_reload_failure_keeps_the_previous_snapshot_serving(
    store_target, tmp_path, sample_corpus, monkeypatch
):
    service = NewsService(store_target, sample_corpus, index_cache=tmp_path / "cache")
    service.reload()
    version = service.snapshot.version
    write(sample_corpus, "new.txt", plain("Brand new bridge", LONG))
    import retrieval.service as service_module

    def broken_build(*args, **kwargs):
        raise MemoryError("index build failed")

    monkeypatch.setattr(service_module.BM25Index, "build", broken_build)
    with pytest.raises(MemoryError):
        service.reload()
    assert service.snapshot.version == version
    assert service.store.corpus_version() == version
    assert service.store.article("new") is None
    assert not service.search("Manbij civilians").no_match


def test_each_file_is_written_before_the_next_is_read(tmp_path):
    """Ingest streams: when the third file is read, the first two files' articles and passages are already
    in the (uncommitted) transaction, and nobody else sees them before the commit."""
    folder = tmp_path / "corpus"
    for n in range(3):
        write(folder, f"{n}.txt", plain(f"Article {n}", LONG, f"Paragraph two of article {n}."))
    store = SQLiteStore(tmp_path / "n.db")
    seen = {}

    def progress(done, total):
        if done == 3:
            writer_view = store.db.conn  # the ingest's own connection, inside its transaction
            seen["articles"] = writer_view.execute("SELECT count(*) FROM articles").fetchone()[0]
            seen["passages"] = writer_view.execute("SELECT count(*) FROM passages").fetchone()[0]
            seen["committed"] = store.counts()["articles"]  # another connection: nothing yet

    summary = ingest_folder(store, folder, progress=progress)
    assert summary.added == 3
    assert seen["articles"] == 2 and seen["passages"] >= 2
    assert seen["committed"] == 0
    assert store.counts()["articles"] == 3


def test_an_ingest_that_changes_nothing_writes_nothing(tmp_path):
    import sqlite3

    folder = tmp_path / "corpus"
    write(folder, "a.txt", plain("Alpha", LONG))
    store = SQLiteStore(tmp_path / "n.db")
    version = ingest_folder(store, folder).corpus_version
    other = sqlite3.connect(tmp_path / "n.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database: a write would wait, then fail
    try:
        summary = ingest_folder(store, folder)
    finally:
        other.rollback()
        other.close()
    assert (summary.unchanged, summary.corpus_version) == (1, version)


def test_an_archive_too_large_for_layouts_never_builds_them(tmp_path, monkeypatch):
    """The size of the passages decides before the build whether layouts are kept; the index is otherwise
    the same, and its quotes the same."""
    from retrieval import index as index_module

    folder = tmp_path / "corpus"
    for n in range(3):
        write(folder, f"{n}.txt", plain(f"Bridge {n}", LONG, f"The second paragraph of article {n}."))
    kept = NewsService(tmp_path / "kept.db", folder)
    kept.reload(in_child=False)
    words = int(kept.snapshot.require_index().n_passages)  # far fewer words than characters
    built = []
    real_build = index_module.BM25Index.build.__func__

    def spy(cls, docs, analyzer, **kw):
        built.append(kw.get("layout", True))
        return real_build(cls, docs, analyzer, **kw)

    monkeypatch.setattr(index_module, "LAYOUT_MAX_WORDS", words)
    monkeypatch.setattr(index_module.BM25Index, "build", classmethod(spy))
    skipped = NewsService(tmp_path / "skipped.db", folder)
    skipped.reload(in_child=False)
    assert built == [False]
    assert not list((tmp_path / "skipped.db.index").glob("v*/lay_*.npy"))
    assert list((tmp_path / "kept.db.index").glob("v*/lay_*.npy"))
    question = "What will the new bridge cost?"
    assert skipped.search(question).to_json() | {"took_ms": 0} == kept.search(question).to_json() | {
        "took_ms": 0
    }


def test_an_ingest_gives_the_connection_its_page_cache_back(tmp_path):
    folder = tmp_path / "corpus"
    write(folder, "a.txt", plain("Alpha", LONG))
    store = SQLiteStore(tmp_path / "n.db")
    before = store.db.conn.execute("PRAGMA cache_size").fetchone()[0]
    during = {}

    def progress(done, total):
        if done == 2:
            during["cache"] = store.db.conn.execute("PRAGMA cache_size").fetchone()[0]

    write(folder, "b.txt", plain("Beta", LONG))
    assert ingest_folder(store, folder, progress=progress).added == 2
    assert during["cache"] != before
    assert store.db.conn.execute("PRAGMA cache_size").fetchone()[0] == before
