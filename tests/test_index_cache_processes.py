"""Two processes on one machine sharing one index cache (``NEWSDESK_INDEX_CACHE``, or the folder beside an
SQLite file) pick up each new version at the same moment: each downloads or builds it into a folder of its own
and renames it into place, the loser uses the winner's, and neither ever loads, or deletes, a folder the other
is writing or serving."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from retrieval.service import NewsService
from tests.bot_harness import corpus_file

# Each line on stdin: pick up the current version, then answer the question on that line.
WORKER = """
import json, sys, traceback
from retrieval.service import NewsService

db, corpus, cache = sys.argv[1:4]
service = NewsService(db, corpus, index_root=cache or None)
for line in sys.stdin:
    try:
        service.refresh_if_changed()
        snapshot = service.snapshot
        answer = service.search(line.strip())
        out = {
            "version": snapshot.version,
            "copy": snapshot.reader is not None,
            "titles": [r.title for r in answer.results],
        }
    except Exception:
        out = {"error": traceback.format_exc()}
    print(json.dumps(out), flush=True)
"""

WORDS = ["amber", "birch", "cobalt", "dune", "ember", "fjord", "garnet", "heron", "indigo", "juniper"]


def start_worker(db: str, corpus: Path, cache: Path | None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, db, str(corpus), str(cache or "")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )


def ask_both(workers: list[subprocess.Popen], question: str) -> list[dict]:
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(question + "\n")
        worker.stdin.flush()  # both start at once: they race for the same version folder
    return [json.loads(worker.stdout.readline()) for worker in workers if worker.stdout is not None]


def run_rounds(db: str, corpus: Path, cache: Path, parent: NewsService, *, shared: bool) -> None:
    workers = [start_worker(db, corpus, cache if shared else None) for _ in range(2)]
    try:
        for i, word in enumerate(WORDS):
            title = f"Harbour Notice {word.title()}"
            corpus_file(corpus, f"notices/{word}.txt", title, f"The harbour notice about the {word} buoy.")
            version = parent.reload().corpus_version
            if shared and i % 2:
                with psycopg.connect(db, autocommit=True) as conn:  # none stored: both build from the rows
                    conn.execute("DELETE FROM index_snapshots WHERE version = %s", [version])
            if not shared:
                shutil.rmtree(cache / f"v{version}")  # none saved: both build from the rows
            for said in ask_both(workers, word):
                assert "error" not in said, said.get("error")
                assert said["version"] == version
                assert said["titles"] and said["titles"][0] == title
                assert said["copy"] is shared  # a shared database answers from the local corpus copy
    finally:
        for worker in workers:
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait(timeout=30)
    left = [p.name for p in cache.iterdir()]
    assert not [name for name in left if name.startswith(".")], left  # no half-built or half-deleted folder
    assert f"v{version}" in left and len(left) <= 3, left


def test_two_processes_on_one_cache_download_and_build_the_same_versions(pg_url, sample_corpus, tmp_path):
    cache = tmp_path / "cache"
    parent = NewsService(pg_url, sample_corpus, index_root=tmp_path / "parent")
    try:
        run_rounds(pg_url, sample_corpus, cache, parent, shared=True)
    finally:
        parent.close()


def test_two_processes_beside_one_sqlite_file_build_the_same_versions(sample_corpus, tmp_path):
    db = tmp_path / "newsdesk.db"
    parent = NewsService(db, sample_corpus)
    try:
        run_rounds(str(db), sample_corpus, parent.index_root, parent, shared=False)
    finally:
        parent.close()


@pytest.mark.parametrize("leftover", ["damaged", "another database's"])
def test_a_stale_version_folder_is_replaced_whole(sample_corpus, tmp_path, leftover):
    db = tmp_path / "newsdesk.db"
    service = NewsService(db, sample_corpus)
    try:
        version = service.reload().corpus_version
        folder = service.index_root / f"v{version}"
        if leftover == "damaged":
            (folder / "post_doc.npy").write_bytes(b"not an array")
        else:
            (folder / "corpus_stamp").write_text("0" * 32, encoding="ascii")
        service._snapshot = None
        assert service.search("library repairs cost").results
        assert NewsService(db, sample_corpus)._load_index(service.store.corpus_state()) is not None
    finally:
        service.close()
