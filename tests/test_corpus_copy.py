"""The local copy of the corpus beside an index (shared databases): read without ever being written, and held
open by the answers reading it until the last of them is done."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from retrieval.corpus_copy import CORPUS_FILE, open_corpus_copy, write_corpus_copy
from retrieval.models import Article
from retrieval.sqlite_store import SQLiteStore
from retrieval.store import CorpusState, utcnow_iso


def open_files(under: Path, name: str = CORPUS_FILE) -> list[str]:
    """The files named ``name`` under the folder ``under`` that this process holds open (``/proc/self/fd``)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}").removesuffix(" (deleted)"))
        except OSError:
            continue  # the descriptor listdir itself used, closed by now
        if target.name == name and target.is_relative_to(under):
            found.append(str(target))
    return found


@pytest.fixture
def copy_folder(tmp_path) -> Path:
    source = SQLiteStore(tmp_path / "source.db")
    with source.writer() as writer:
        for n in range(3):
            article = Article(id=f"a{n}", title=f"Title {n}", body=f"Body {n}.", source=f"a{n}.txt")
            writer.put_article(article, now=utcnow_iso(), new=True)
            writer.put_text(article.content_hash, article.body, [article.body])
        state = writer.bump_version()
    folder = tmp_path / "v1"
    write_corpus_copy(source.query, folder, state)
    source.close()
    return folder


def fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_reading_a_corpus_copy_writes_nothing_to_it_or_beside_it(copy_folder):
    before = fingerprint(copy_folder / CORPUS_FILE)
    copy = open_corpus_copy(copy_folder)
    assert copy is not None
    assert copy.corpus_state() == CorpusState(1, copy.corpus_state().stamp) and copy.counts()["articles"] == 3
    assert [a.id for a in copy.headlines(5)] == ["a0", "a1", "a2"]
    assert copy.passages_for_article("a1") == [(0, "Body 1.")]
    copy.close()
    assert fingerprint(copy_folder / CORPUS_FILE) == before
    assert sorted(p.name for p in copy_folder.iterdir()) == [CORPUS_FILE]  # no -wal, -shm or -journal


def test_a_retired_copy_serves_the_answer_holding_it_then_closes(copy_folder):
    copy = open_corpus_copy(copy_folder)
    assert copy is not None and len(open_files(copy_folder)) == 1
    assert copy.acquire()  # an answer in flight
    copy.retire()  # a swap: a newer copy serves the next answers
    assert not copy.acquire()
    assert copy.article("a2") is not None and len(open_files(copy_folder)) == 1
    copy.release()  # that answer is done: the file is closed
    assert open_files(copy_folder) == []


def test_a_copy_nothing_holds_closes_when_retired(copy_folder):
    copy = open_corpus_copy(copy_folder)
    assert copy is not None and len(open_files(copy_folder)) == 1
    copy.retire()
    assert open_files(copy_folder) == []
