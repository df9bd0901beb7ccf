"""newsdesk on PostgreSQL against SQLite: the time for a second process to pick up a new corpus version, and
question latency on each back end.

    python bench/bench_postgres.py                       # BBC News (2,225 articles), a throwaway cluster
    python bench/bench_postgres.py --corpus reuters      # Reuters-21578 (21,577 articles)
    python bench/bench_postgres.py --url postgresql://user@host/db   # an existing, empty database
    python bench/bench_postgres.py --million             # also: moving a 1M-passage index (see below)

* **ingest**: ``newsdesk ingest``'s work (``NewsService.reload``) into a new SQLite file and into PostgreSQL; on
  PostgreSQL it includes writing the local corpus copy and storing the snapshot in the database.
* **pick-up**: a second process (a new service with an empty index folder) opens the current version:
  (a) downloading the stored snapshot and memory-mapping it, (b) with no snapshot stored, building the index
  from the rows (and then storing it, as newsdesk does). Best of three, each into a fresh folder.
* **new version heard**: a reload by the first process; from the second process hearing its ``NOTIFY`` (sent at
  the commit) to that process serving the new version: download, map and swap (best of three).
* **question latency**: ``bench/bbc_questions.jsonl`` (20 questions) asked 10 times each, on the SQLite service
  and on the PostgreSQL reader (whose answers read the local corpus copy), taking turns: p50 and p95, wall time.
* ``--million``: a synthetic index of 1,000,000 passages (the sentences of the BBC and Reuters corpora
  resampled), stored in the database and downloaded into a fresh folder, against building it from its
  documents in memory (a lower bound for a rebuild from the rows, which also reads them from the database).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "corpora"

import psycopg  # noqa: E402

from retrieval.pg_sync import download_snapshot, upload_snapshot  # noqa: E402
from retrieval.service import NewsService  # noqa: E402

CORPORA = {"bbc": SHARED / "bbc" / "bbc.jsonl.gz", "reuters": SHARED / "news-large" / "reuters21578.jsonl.gz"}


def timed(func):
    started = time.perf_counter()
    value = func()
    return time.perf_counter() - started, value


def best_of(n, func):
    return min(timed(func)[0] for _ in range(n))


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def latency(services, questions, rounds):
    """p50 and p95 per service, in ms. The services take turns question by question (in alternating order), so
    that a busy moment of a shared machine falls on both alike."""
    for service in services:  # warm up (the kernels, the page cache)
        for q in questions:
            service.search(q, k=3)
    times: list[list[float]] = [[] for _ in services]
    for r in range(rounds):
        for q in questions:
            order = list(enumerate(services))
            for i, service in order if r % 2 == 0 else order[::-1]:
                started = time.perf_counter()
                service.search(q, k=3)
                times[i].append((time.perf_counter() - started) * 1000)
    return [(pct(t, 50), pct(t, 95)) for t in times]


def add_article(folder: Path, n: int) -> None:
    (folder / f"extra-{n}.txt").write_text(
        f"Harbour Kite Festival {n}\n\nThe harbour kite festival number {n} moves inland this summer.\n",
        encoding="utf-8",
    )


def heard_new_version(url, corpus, root, writer, rounds=3) -> float:
    """From the notification of a reload's commit to the second process serving the new version (download, mmap,
    swap), as the second process sees it. Best of ``rounds``."""
    reader = NewsService(url, corpus, index_root=root)
    reader.open()
    took: list[float] = []
    swapped = threading.Event()

    def on_change(version):
        heard = time.perf_counter()
        if version is not None and reader.refresh_if_changed():
            took.append(time.perf_counter() - heard)
            swapped.set()

    listener = reader.listen_for_versions(on_change, poll_every=60)
    assert listener is not None and listener.wait_connected(10)
    try:
        for n in range(rounds):
            swapped.clear()
            add_article(corpus, 1000 + n)
            writer.reload()
            assert swapped.wait(120), "the second process did not pick up the new version"
    finally:
        reader.close()
    return min(took)


def million(url: str, work: Path) -> dict:
    sys.path.insert(0, str(REPO / "bench"))
    from bench_retrieval import million as million_docs

    from retrieval.analyze import Analyzer
    from retrieval.index import BM25Index

    docs = million_docs()
    build, index = timed(lambda: BM25Index.build(iter(docs), Analyzer("english")))
    folder = work / "m" / "v1"
    index.save(folder)
    del index
    size = sum(p.stat().st_size for p in folder.iterdir())
    with psycopg.connect(url, autocommit=True) as conn:
        upload, _ = timed(lambda: upload_snapshot(conn, 1_000_001, "bench", folder))
        fetch = []
        for n in range(3):
            dest = work / "m-down" / f"v{n}"
            fetch.append(
                timed(lambda dest=dest: (download_snapshot(conn, 1_000_001, dest), BM25Index.load(dest)))[0]
            )
        conn.execute("DELETE FROM index_snapshots WHERE version = 1000001")
    return {
        "passages": len(docs),
        "bytes": size,
        "build": build,
        "upload": upload,
        "download_mmap": min(fetch),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a throwaway cluster)")
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="bbc")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--million", action="store_true")
    args = parser.parse_args()

    cluster = None
    url = args.url
    if url is None:
        from tests.postgres import start_cluster

        cluster = start_cluster()
        url = cluster.new_database()
    work = Path(tempfile.mkdtemp(prefix="newsdesk-bench-pg-"))
    try:
        corpus = work / "articles"
        corpus.mkdir()
        shutil.copy(CORPORA[args.corpus], corpus)
        questions = [json.loads(line)["question"] for line in (REPO / "bench" / "bbc_questions.jsonl").open()]

        sqlite = NewsService(work / "n.db", corpus, index_root=work / "sqlite-index")
        t_sqlite, summary = timed(sqlite.reload)
        pg = NewsService(url, corpus, index_root=work / "pg-a")
        t_pg, _ = timed(pg.reload)
        snapshot = pg.snapshot
        passages = snapshot.index.n_passages if snapshot.index else 0
        with psycopg.connect(url) as conn:
            (stored_bytes,) = conn.execute(
                "SELECT total_bytes FROM index_snapshots WHERE version = %s", [snapshot.version]
            ).fetchone()

        def pick_up(n=[0]):  # noqa: B006 (a counter: a fresh folder each time)
            n[0] += 1
            reader = NewsService(url, corpus, index_root=work / f"pick-{n[0]}")
            try:
                reader.open()
            finally:
                reader.close()

        t_download = best_of(3, pick_up)
        reader = NewsService(url, corpus, index_root=work / "pg-b")
        reader.open()
        lat_sqlite, lat_pg = latency([sqlite, reader], questions, args.rounds)
        reader.close()

        def rebuild():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DELETE FROM index_snapshots")
            pick_up()

        t_rebuild = best_of(3, rebuild)
        t_heard = heard_new_version(url, corpus, work / "pg-c", pg)
        pg.close()
        sqlite.close()
        big = million(url, work) if args.million else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if cluster is not None:
            from tests.postgres import stop_cluster

            stop_cluster(cluster)

    print(
        f"## {args.corpus}: {summary.added:,} articles, {passages:,} passages; snapshot {stored_bytes / 1e6:.1f} MB"
    )
    print()
    print("| step | SQLite | PostgreSQL |")
    print("|---|---|---|")
    print(
        f"| ingest (reload into an empty database) | {t_sqlite:.2f} s | {t_pg:.2f} s (with the snapshot stored) |"
    )
    print(f"| second process opens the version: download + mmap | - | {t_download:.2f} s |")
    print(f"| second process opens the version: rebuild from the rows (+ store) | - | {t_rebuild:.2f} s |")
    print(
        f"| new version: notification heard to served by the second process (download, map, swap) | - | {t_heard:.2f} s |"
    )
    print(
        f"| question latency p50 / p95 | {lat_sqlite[0]:.1f} / {lat_sqlite[1]:.1f} ms | {lat_pg[0]:.1f} / {lat_pg[1]:.1f} ms |"
    )
    if big:
        print()
        print(
            f"1M: {big['passages']:,} passages, index {big['bytes'] / 1e6:.0f} MB: build from documents in memory "
            f"{big['build']:.1f} s; store in PostgreSQL {big['upload']:.1f} s; download + mmap {big['download_mmap']:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
