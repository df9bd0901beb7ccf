"""The service the bot holds: snapshots, versions, readers that share the database or receive a copy."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time

import pytest

from retrieval.service import NewsService
from tests.bot_harness import corpus_file

pytestmark = pytest.mark.both_stores


def test_a_reader_sharing_the_database_picks_up_a_reload_made_by_another_process(
    store_target, tmp_path, sample_corpus
):
    writer = NewsService(store_target, sample_corpus, index_cache=tmp_path / "writer-cache")
    writer.reload()
    # Another machine: its own folder for the index, the same database.
    reader = NewsService(store_target, sample_corpus, index_cache=tmp_path / "reader-cache")
    assert "Night Ferry" not in str(reader.search("night ferry Port Ellen").to_json())
    corpus_file(
        sample_corpus, "local/ferry.txt", "Night Ferry Returns", "The night ferry to Port Ellen returns."
    )
    writer.reload()
    assert reader.refresh_if_changed() is True
    assert reader.search("night ferry Port Ellen").results[0].title == "Night Ferry Returns"
    assert (reader.snapshot.version, reader.snapshot.stamp) == (
        writer.snapshot.version,
        writer.snapshot.stamp,
    )
    assert reader.refresh_if_changed() is False
    reader.add_feedback(
        guild_id="1", channel_id="2", user_id="3", question="ferry?", article_ids=["local/ferry"], vote=-1
    )
    assert writer.feedback_summary().worst == [("local/ferry", 1)]
    writer.close()
    reader.close()


def test_a_reader_picks_up_a_database_copied_into_place(tmp_path, sample_corpus):
    (tmp_path / "writer").mkdir()
    writer = NewsService(tmp_path / "writer" / "n.db", sample_corpus)
    writer.reload()
    reader_dir = tmp_path / "reader"
    reader_dir.mkdir()

    def ship():
        """What a deploy script does: the index folder first, then the database renamed into place."""
        shutil.copytree(writer.index_root, reader_dir / "n.db.index", dirs_exist_ok=True)
        with sqlite3.connect(writer.db_path) as source, sqlite3.connect(reader_dir / "copy.db") as target:
            source.backup(target)
        (reader_dir / "copy.db").replace(reader_dir / "n.db")

    ship()
    reader = NewsService(reader_dir / "n.db", sample_corpus)
    assert "Night Ferry" not in str(reader.search("night ferry Port Ellen").to_json())
    corpus_file(
        sample_corpus, "local/ferry.txt", "Night Ferry Returns", "The night ferry to Port Ellen returns."
    )
    writer.reload()
    ship()
    assert reader.refresh_if_changed() is True
    answer = reader.search("night ferry Port Ellen")
    assert answer.results[0].title == "Night Ferry Returns"
    assert reader.snapshot.version == writer.snapshot.version
    assert reader.refresh_if_changed() is False


def test_pages_say_exactly_whether_more_results_exist(service):
    first = service.search("pounds council million", k=2)
    assert len(first.results) == 2 and first.has_more
    pages = [first]
    while pages[-1].has_more:
        pages.append(service.search("pounds council million", k=2, offset=pages[-1].offset + 2))
    assert not pages[-1].has_more and pages[-1].results
    seen = [(r.article_id, r.ordinal) for page in pages for r in page.results]
    assert len(seen) == len(set(seen))
    assert service.search("pounds council million", k=2, offset=len(seen)).results == []


def test_a_reload_clears_what_a_dead_process_left_beside_the_index_folders(service, sample_corpus):
    root = service.index_root
    old = [root / ".v1.build-dead0001", root / ".v1.download-dead0002", root / ".v1.old-dead0003"]
    fresh = root / ".v9.build-busy0004"  # another process writing now
    for folder in (*old, fresh):
        folder.mkdir(parents=True)
        (folder / "postings.npy").write_bytes(b"half written")
    for folder in old:
        os.utime(folder, (time.time() - 7200, time.time() - 7200))
    corpus_file(
        sample_corpus, "local/ferry.txt", "Night Ferry Returns", "The night ferry to Port Ellen returns."
    )
    service.reload()
    assert [folder for folder in old if folder.exists()] == []
    assert fresh.is_dir()
    assert service.search("night ferry Port Ellen").results[0].title == "Night Ferry Returns"


def test_answers_after_a_reload_show_the_new_rows_of_an_article_they_showed_before(
    store_target, tmp_path, sample_corpus
):
    """The rows answers read (the article, its passages) are kept for the corpus version they came from: a
    reload, in this process or in another one, never lets an answer show the article as it was."""
    corpus_file(
        sample_corpus,
        "local/ferry.txt",
        "Night Ferry Returns",
        "The night ferry to Port Ellen returns in May.",
    )
    writer = NewsService(store_target, sample_corpus, index_cache=tmp_path / "writer-cache")
    writer.reload()
    reader = NewsService(store_target, sample_corpus, index_cache=tmp_path / "reader-cache")
    for service in (writer, reader):
        first = service.search("when does the night ferry to Port Ellen return", k=1).results[0]
        assert (first.article_id, first.title) == ("local/ferry", "Night Ferry Returns")
        assert "May" in first.excerpt.text
    corpus_file(
        sample_corpus,
        "local/ferry.txt",
        "Night Ferry Delayed",
        "The night ferry to Port Ellen returns in June, a month late.",
    )
    writer.reload()
    assert reader.refresh_if_changed() is True
    for service in (writer, reader):
        again = service.search("when does the night ferry to Port Ellen return", k=1).results[0]
        assert (again.article_id, again.title) == ("local/ferry", "Night Ferry Delayed")
        assert "June" in again.excerpt.text and "May" not in again.excerpt.text
    writer.close()
    reader.close()
