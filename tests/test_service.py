"""The service the bot holds: snapshots, versions, and readers that receive a copied database."""

from __future__ import annotations

import shutil
import sqlite3

from retrieval.service import NewsService
from tests.bot_harness import corpus_file


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
