"""Ingest benchmark: ``newsdesk ingest`` of a large corpus, before and after a change, beside bm25s.

For each size, a corpus is made by ``bench/make_big_corpus.py`` (Reuters replicated with new ids and lightly
varied text), then, one after the other in the same run:

* ``before``: ``python -m bot.cli ingest`` from a git ref (default ``main``, exported with ``git archive``);
* ``after``: the same command from this working tree;
* ``after: index build only`` (with ``--index-only``): this tree's index build alone, from the ``after``
  database's passages, as a reload builds it (analysis, postings, save);
* ``bm25s``: bm25s (numba backend) tokenizing (English stopwords, PyStemmer's English stemmer) and indexing the
  same passages, title and text, read from the ``after`` database beforehand (the read is not timed).

Each runs in a fresh child process (into a new database each time). Peak memory is the largest of the child's
high-water mark (``ru_maxrss`` of ``wait4``, the same as VmHWM) and the resident memory of the child and the worker
processes it starts (``NEWSDESK_INGEST_WORKERS``) together, read from ``/proc`` every 50 ms; each one's high-water
mark is shown beside it. Wall and CPU (user + system) time are the child's, its workers' CPU included. The
numba kernels of both trees are compiled once on a tiny corpus before anything is timed.

    python bench/bench_ingest.py --sizes 50k,100k,200k --runs 2 --out bench/ingest-results.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from make_big_corpus import write_corpus  # noqa: E402

PASSAGES = (
    "WITH canon AS (SELECT content_hash, min(id) AS id FROM articles GROUP BY content_hash)"
    " SELECT a.title, p.text FROM passages p JOIN canon c ON c.content_hash = p.text_hash"
    " JOIN articles a ON a.id = c.id ORDER BY p.id"
)


def _size(text: str) -> int:
    text = text.lower()
    return int(float(text[:-1]) * 1000) if text.endswith("k") else int(text)


def _export(ref: str, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    data = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _ratio_line(ratios: list[float]) -> str:
    """The after / before ratios taken within each run: their median and range."""
    return (
        f"ratio after / before (within each run): median {statistics.median(ratios):.3f}, "
        f"{min(ratios):.3f}-{max(ratios):.3f}"
    )


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    env["PYTHONPATH"] = str(tree)
    return env


def _children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB; zeros once it is gone."""
    found = {"VmRSS:": 0, "VmHWM:": 0}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line[:6] in found:
                    found[line[:6]] = int(line.split()[1])
    except OSError:
        pass
    return found["VmRSS:"], found["VmHWM:"]


def _watch_tree(root: int, peaks: dict[int, int], tree_peak: list[int], done: threading.Event) -> None:
    """Until ``done``, every 50 ms: the high-water mark of each process below ``root`` (its workers), and the
    largest sum of the resident memory of ``root`` and all of them at one sample."""
    while not done.wait(0.05):
        tree = _children()
        total = _memory_kb(root)[0]
        below = list(tree.get(root, []))
        while below:
            pid = below.pop()
            below.extend(tree.get(pid, []))
            rss, hwm = _memory_kb(pid)
            total += rss
            peaks[pid] = max(peaks.get(pid, 0), hwm)
        tree_peak[0] = max(tree_peak[0], total)


def _measure(cmd: list[str], *, env: dict[str, str], cwd: Path) -> dict:
    """Run ``cmd``; its wall time, CPU time (its own and its worker processes') and peak memory: the largest of
    the child's own high-water mark and the resident memory of the child and its workers together (sampled every
    50 ms); besides, each one's high-water mark (their sum bounds the tree's peak from above, workers that never
    ran at the same time included)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        peaks: dict[int, int] = {}
        tree_peak = [0]
        done = threading.Event()
        watcher = threading.Thread(target=_watch_tree, args=(proc.pid, peaks, tree_peak, done), daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    workers_mb = sum(peaks.values()) / 1024
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,  # the workers' too: the child waits for them
        "own_peak_mb": usage.ru_maxrss / 1024,
        "workers_peak_mb": workers_mb,
        "peak_mb": max(usage.ru_maxrss, tree_peak[0]) / 1024,
        "workers": len(peaks),
        "stdout": stdout,
    }


def _ingest(tree: Path, corpus: Path, db: Path) -> dict:
    for old in db.parent.glob(db.name + "*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    result = _measure(
        [sys.executable, "-m", "bot.cli", "ingest", str(corpus), "--db", str(db), "--json"],
        env=_env(tree),
        cwd=db.parent,
    )
    summary = json.loads(result["stdout"].strip().splitlines()[-1])
    assert summary["failed"] == 0, summary["failures"][:5]
    result["articles"] = summary["added"]
    return result


def bm25s_child(db: str, spill: str) -> None:
    """(child) Index the passages of ``db`` with bm25s; prints the timings as JSON."""
    import bm25s
    import Stemmer

    conn = sqlite3.connect(db)
    texts = [f"{title} {text}" for title, text in conn.execute(PASSAGES)]
    conn.close()
    stemmer = Stemmer.Stemmer("english")
    warm = bm25s.BM25(k1=0.9, b=0.75, backend="numba")  # compile bm25s's numba code before timing
    warm.index(bm25s.tokenize(["a warm up text", "another one"], show_progress=False), show_progress=False)
    started, cpu = time.perf_counter(), time.process_time()
    tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=0.9, b=0.75, backend="numba")
    retriever.index(tokens, show_progress=False)
    retriever.save(spill)
    print(
        json.dumps(
            {
                "passages": len(texts),
                "seconds": time.perf_counter() - started,
                "cpu": time.process_time() - cpu,
            }
        )
    )


def index_child(db: str, out: str) -> None:
    """(child) Build newsdesk's index of the passages of ``db`` alone, as a reload does, and save it."""
    from retrieval.analyze import Analyzer
    from retrieval.index import BM25Index, IndexDoc, layouts_fit
    from retrieval.store import open_store
    from retrieval.workers import default_workers

    store = open_store(db, create=False)
    started = time.perf_counter()
    text_chars = int(store.query("SELECT coalesce(sum(length(text)), 0) FROM passages")[0][0])
    docs = (IndexDoc(*row) for row in store.index_docs_rows())
    index = BM25Index.build(docs, Analyzer(), layout=layouts_fit(text_chars), workers=default_workers())
    index.save(Path(out))
    print(json.dumps({"passages": index.n_passages, "seconds": time.perf_counter() - started}))


def _index_only(db: Path, workdir: Path) -> dict:
    out = workdir / "index-only"
    shutil.rmtree(out, ignore_errors=True)
    result = _measure(
        [sys.executable, str(Path(__file__).resolve()), "--index-child", str(db), str(out)],
        env=_env(REPO),
        cwd=workdir,
    )
    shutil.rmtree(out, ignore_errors=True)
    return result


def _bm25s(db: Path, workdir: Path) -> dict:
    spill = workdir / "bm25s-index"
    shutil.rmtree(spill, ignore_errors=True)
    result = _measure(
        [sys.executable, str(Path(__file__).resolve()), "--bm25s-child", str(db), str(spill)],
        env=_env(REPO),
        cwd=workdir,
    )
    shutil.rmtree(spill, ignore_errors=True)
    inner = json.loads(result["stdout"].strip().splitlines()[-1])
    result.update(passages=inner["passages"], index_wall=inner["seconds"], index_cpu=inner["cpu"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50k,100k,200k")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--before", default="main", help="git ref of the 'before' tree (empty: skip it)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the corpora and databases")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--index-only", action="store_true", help="also time newsdesk's index build alone, from the database"
    )
    parser.add_argument("--bm25s-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--index-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bm25s_child:
        bm25s_child(*args.bm25s_child)
        return
    if args.index_child:
        index_child(*args.index_child)
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="newsdesk-bench-ingest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    trees = {"after": REPO}
    if args.before:
        trees = {"before": _export(args.before, workdir / "before"), **trees}
    sizes = [_size(s) for s in args.sizes.split(",")]
    print(f"workdir {workdir}; trees {', '.join(trees)}; sizes {sizes}", flush=True)

    warm = workdir / "warm"
    write_corpus(warm, 200)
    for name, tree in trees.items():  # compile and cache each tree's numba kernels once
        _ingest(tree, warm, workdir / f"warm-{name}.db")

    rows: list[dict] = []
    for size in sizes:
        corpus = workdir / f"corpus-{size}"
        write_corpus(corpus, size)
        for run in range(1, args.runs + 1):
            measured: dict[str, dict] = {}
            for name, tree in trees.items():
                measured[name] = _ingest(tree, corpus, workdir / f"{name}.db")
                print(f"{size} run {run} {name}: {_line(measured[name])}", flush=True)
            if args.index_only:
                measured["after: index build only"] = _index_only(workdir / "after.db", workdir)
                print(
                    f"{size} run {run} index only: {_line(measured['after: index build only'])}", flush=True
                )
            measured["bm25s"] = _bm25s(workdir / "after.db", workdir)
            print(f"{size} run {run} bm25s: {_line(measured['bm25s'])}", flush=True)
            for name, m in measured.items():
                rows.append(
                    {
                        "size": size,
                        "run": run,
                        "engine": name,
                        **m,
                        "bm25s_wall": measured["bm25s"]["wall"],
                        "bm25s_cpu": measured["bm25s"]["cpu"],
                    }
                )
        if not args.keep:
            shutil.rmtree(corpus)
    table = _table(rows)
    print(table)
    if args.out:
        args.out.write_text(
            f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n{table}\n",
            encoding="utf-8",
        )
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir)


def _line(m: dict) -> str:
    return (
        f"wall {m['wall']:.1f} s, CPU {m['cpu']:.1f} s, peak {m['peak_mb']:.0f} MB "
        f"(high-water marks: {m['own_peak_mb']:.0f} MB, {m['workers']} workers {m['workers_peak_mb']:.0f} MB)"
    )


def _table(rows: list[dict]) -> str:
    passages = {r["size"]: r["passages"] for r in rows if "passages" in r}
    lines = [
        "| articles | passages | run | engine | wall s | CPU s | peak RSS MB (high-water: own, workers') "
        "| wall / bm25s wall "
        "| CPU / bm25s CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']:,} | {passages.get(r['size'], 0):,} | {r['run']} | {r['engine']} | {r['wall']:.1f} "
            f"| {r['cpu']:.1f} | {r['peak_mb']:.0f} ({r['own_peak_mb']:.0f}, {r['workers_peak_mb']:.0f}) "
            f"| {r['wall'] / r['bm25s_wall']:.2f} | {r['cpu'] / r['bm25s_cpu']:.2f} |"
        )
    lines += [
        "",
        "Medians over the runs:",
        "",
        "| articles | engine | wall s | CPU s | peak RSS MB | wall / bm25s wall | CPU / bm25s CPU |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for size in dict.fromkeys(r["size"] for r in rows):
        for engine in dict.fromkeys(r["engine"] for r in rows):
            mine = [r for r in rows if r["size"] == size and r["engine"] == engine]
            lines.append(
                f"| {size:,} | {engine} | {statistics.median(r['wall'] for r in mine):.1f} "
                f"| {statistics.median(r['cpu'] for r in mine):.1f} "
                f"| {statistics.median(r['peak_mb'] for r in mine):.0f} "
                f"| {statistics.median(r['wall'] / r['bm25s_wall'] for r in mine):.2f} "
                f"| {statistics.median(r['cpu'] / r['bm25s_cpu'] for r in mine):.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
