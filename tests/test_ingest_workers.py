"""Worker processes of a large ingest: the same store and index as without them, results in order, and no worker
left running when the ingest is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import retrieval.index as index_module
import retrieval.ingest as ingest_module
from retrieval.analyze import Analyzer
from retrieval.index import BM25Index, IndexDoc
from retrieval.ingest import ingest_folder
from retrieval.service import NewsService
from retrieval.sqlite_store import SQLiteStore
from retrieval.workers import default_workers, ordered, worker_pool
from tests.data import REPO, descendants, generated_news, process_alive, wait_for_moment


def square(n: int) -> tuple[int, int]:
    """(a worker's job) the square of ``n`` and the process that computed it."""
    time.sleep(0.002)
    return n * n, os.getpid()


def test_results_come_back_in_order_each_item_once_shared_with_the_caller():
    items = [(f"item {n}", n) for n in range(60)]
    with worker_pool(1) as pool:
        assert pool is not None
        results = list(ordered(square, items, pool, 1))
    assert [kept for kept, _ in results] == [kept for kept, _ in items]
    assert [value for _, (value, _) in results] == [n * n for n in range(60)]
    where = {pid for _, (_, pid) in results}
    assert os.getpid() in where and len(where) == 2  # the worker's share and the caller's


def test_without_a_pool_everything_runs_here_in_order():
    results = list(ordered(square, [(n, n) for n in range(5)], None, 0))
    assert [(kept, value) for kept, (value, _) in results] == [(n, n * n) for n in range(5)]
    assert {pid for _, (_, pid) in results} == {os.getpid()}


def test_no_workers_makes_no_pool():
    with worker_pool(0) as pool:
        assert pool is None


def test_by_default_one_core_is_left_to_the_ingest_itself(tmp_path):
    assert default_workers() == len(os.sched_getaffinity(0)) - 1
    service = NewsService(tmp_path / "n.db", tmp_path / "corpus")
    assert service.ingest_workers == default_workers()
    service.close()


def _docs() -> list[IndexDoc]:
    docs: list[IndexDoc] = []
    for row in generated_news(120, seed=5):
        for para in (p for p in row["body"].split("\n\n") if p.strip()):
            docs.append(IndexDoc(len(docs), row["id"], row["title"], para, "2016-06-21", row["id"]))
    return docs


@pytest.mark.parametrize("include_title", [True, False])
def test_an_index_analysed_by_workers_equals_the_one_built_alone(monkeypatch, include_title):
    docs = _docs()
    alone = BM25Index.build(docs, Analyzer(), layout=False, include_title=include_title)
    monkeypatch.setattr(
        index_module, "ANALYSIS_BATCH", 7
    )  # many batches, shared by the worker and this process
    shared = BM25Index.build(
        docs, Analyzer(), layout=False, include_title=include_title, workers=1, word_cache=50
    )
    assert shared._manifest() == alone._manifest()
    for name, values in alone._a.items():
        assert shared._a[name].dtype == values.dtype, name
        np.testing.assert_array_equal(shared._a[name], values, err_msg=name)


def _corpus(folder, n_files: int) -> None:
    rows = generated_news(40 * n_files, seed=9)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        lines = [
            f'{{"id": "{r["id"]}", "title": "{r["title"]}", "body": "{r["body"]}"}}'.replace("\n", "\\n")
            for r in rows[40 * f : 40 * (f + 1)]
        ]
        (folder / f"part-{f:03d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "part-999.jsonl").write_text('{"id": "broken", "title": 3}\n', encoding="utf-8")


def _rows(store: SQLiteStore) -> list:
    return [
        store.query("SELECT id, title, published, content_hash, source FROM articles ORDER BY id"),
        store.query("SELECT text_hash, ordinal, text FROM passages ORDER BY text_hash, ordinal"),
        store.query("SELECT path, sha256, article_ids, refusals FROM files ORDER BY path"),
    ]


def test_an_ingest_parsed_by_workers_stores_what_one_alone_stores(tmp_path, monkeypatch):
    folder = tmp_path / "corpus"
    _corpus(folder, 12)
    alone = SQLiteStore(tmp_path / "alone.db")
    first = ingest_folder(alone, folder, workers=0)
    monkeypatch.setattr(ingest_module, "PARALLEL_MIN_BYTES", 0)
    shared = SQLiteStore(tmp_path / "shared.db")
    second = ingest_folder(shared, folder, workers=1)
    assert (second.added, second.failed) == (first.added, first.failed) == (480, 1)
    assert second.failures == first.failures
    assert _rows(shared) == _rows(alone)
    again = ingest_folder(
        shared, folder, workers=1
    )  # unchanged files are recognised from the workers' digests
    assert (again.added, again.changed, again.unchanged, again.failed) == (0, 0, 480, 1)


# The ingest runs in a child process with one worker process, even for this small corpus, and says when it
# reaches a moment (parsing: its worker reads the files; indexing: its worker analyses passages), then lingers.
_WITH_WORKERS = """
import sys, time
import retrieval.index, retrieval.ingest, retrieval.service
from bot.cli import main

moment, folder, db = sys.argv[1:4]
retrieval.ingest.PARALLEL_MIN_BYTES = 0
retrieval.service.layouts_fit = lambda *args: False  # so that the build analyses its passages in a worker
retrieval.index.ANALYSIS_BATCH = 5

def lingering(ordered, name):
    def wrapped(*args, **kwargs):
        for n, result in enumerate(ordered(*args, **kwargs)):
            if n == 3 and moment == name:
                print(f"MOMENT {name}", flush=True)
                time.sleep(30)  # killed meanwhile
            yield result
    return wrapped

retrieval.ingest.ordered = lingering(retrieval.ingest.ordered, "parsing")
retrieval.index.ordered = lingering(retrieval.index.ordered, "indexing")

if __name__ == "__main__":
    sys.exit(main(["ingest", folder, "--db", db]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("moment", ["parsing", "indexing"])
def test_a_killed_ingest_leaves_no_worker_running(tmp_path, moment):
    folder = tmp_path / "corpus"
    _corpus(folder, 6)
    script = tmp_path / "ingest_with_workers.py"
    script.write_text(_WITH_WORKERS, encoding="utf-8")
    log_path = tmp_path / "ingest.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(script), moment, str(folder), str(tmp_path / "n.db")],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**clean, "PYTHONPATH": str(REPO), "NEWSDESK_INGEST_WORKERS": "1"},
        )
    try:
        wait_for_moment(proc, log_path, moment, timeout=60)
        workers = descendants(proc.pid)
        assert workers, "the ingest started no worker process"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while any(process_alive(w) for w in workers):
            assert time.monotonic() < deadline, f"workers outlived the killed ingest: {workers}"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_does_not_import_the_main_module_of_the_process_that_starts_it(tmp_path):
    """``newsdesk``'s command line imports discord.py; a worker that imported it too would spend 0.3 s and
    50-100 MB on nothing it uses. The main module is left as it was."""
    (tmp_path / "probe.py").write_text("import sys\n\n\ndef modules():\n    return set(sys.modules)\n")
    script = tmp_path / "main_script.py"
    script.write_text(
        "import sys\n"
        "import discord  # as the command line does\n"
        "import probe\n"
        "from retrieval.workers import worker_pool\n"
        "if __name__ == '__main__':\n"
        "    with worker_pool(1) as pool:\n"
        "        seen = pool.submit(probe.modules).result()\n"
        "    main = sys.modules['__main__']\n"
        "    print('discord' in seen, 'retrieval.workers' in seen, main.__file__ == sys.argv[0], main.__spec__)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["False", "True", "True", "None"]
