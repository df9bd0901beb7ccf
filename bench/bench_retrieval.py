"""Retrieval benchmark: newsdesk's BM25 index side by side with stock rank-bm25, bm25s and SQLite FTS5.

Sizes:
  2k    SQuAD v1.1 dev paragraphs (2,067); quality is measured here (recall@1/5/20, MRR@10 of the
        gold paragraph over all 10,570 questions).
  100k  Reuters-21578 paragraphs (107,695 passages).
  1m    1,000,000 passages: every real passage (Reuters, BBC, SQuAD) once, the rest resampled from
        real sentences: each new passage joins 1-4 sentences drawn uniformly at random (numpy
        default_rng(20240607)) from the pool of all sentences of the three corpora.

Every engine gets the same tokens (newsdesk's analyzer; titles counted with their passages), so
quality differences are scoring differences only. Latency is per question, single thread, and
includes analyzing the question. Peak memory is the process RSS sampled every 10 ms during the
build, minus the RSS before it (the corpus held in memory is not counted).

    python bench/bench_retrieval.py --sizes 2k,100k,1m --out bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from retrieval.analyze import Analyzer  # noqa: E402
from retrieval.index import BM25Index, IndexDoc  # noqa: E402
from retrieval.passages import split_sentences  # noqa: E402

SHARED = REPO.parent / "shared" / "corpora"
SEED = 20240607
K1, B = None, None  # filled from the index defaults


# ----------------------------------------------------------------------------------------------
# corpora
# ----------------------------------------------------------------------------------------------


def squad():
    with gzip.open(SHARED / "squad" / "dev-v1.1.json.gz", "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    docs, questions = [], []
    for art in data["data"]:
        for p in art["paragraphs"]:
            i = len(docs)
            docs.append(
                IndexDoc(i, f"squad/{i}", art["title"].replace("_", " "), p["context"], None, f"squad/{i}")
            )
            questions.extend((qa["question"], i) for qa in p["qas"])
    return docs, questions


def _paragraph_docs(path: Path, *, id_prefix: str = "", dated: bool = True) -> list[IndexDoc]:
    """One IndexDoc per paragraph of each article in a normalized JSON Lines corpus."""
    docs = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            article_id = id_prefix + row["id"]
            published = row.get("published") if dated else None
            for para in (p for p in row["body"].split("\n\n") if p.strip()):
                docs.append(IndexDoc(len(docs), article_id, row["title"] or "", para, published, article_id))
    return docs


def reuters():
    return _paragraph_docs(SHARED / "news-large" / "reuters21578.jsonl.gz")


def bbc():
    return _paragraph_docs(SHARED / "bbc" / "bbc.jsonl.gz", id_prefix="bbc/", dated=False)


def million(n=1_000_000):
    real = reuters() + bbc() + squad()[0]
    sentences = [d.text[s:e] for d in real for s, e in split_sentences(d.text)]
    rng = np.random.default_rng(SEED)
    docs = [
        IndexDoc(i, f"real/{d.article_id}", d.title, d.text, d.published, d.dup_key)
        for i, d in enumerate(real)
    ]
    n_new = n - len(docs)
    lengths = rng.integers(1, 5, n_new)
    picks = rng.integers(0, len(sentences), int(lengths.sum()))
    pos = 0
    for j in range(n_new):
        m = int(lengths[j])
        text = " ".join(sentences[x] for x in picks[pos : pos + m])
        pos += m
        art = f"synthetic/{j // 5}"
        docs.append(IndexDoc(len(docs), art, "", text, None, art))
    return docs


# ----------------------------------------------------------------------------------------------
# measurement helpers
# ----------------------------------------------------------------------------------------------


class PeakRSS:
    def __init__(self):
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def delta_mb(self):
        return (self.peak - self.base) / 2**20


def latency(fn, questions):
    times = []
    for q in questions:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    a = np.array(times) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def quality(rank_fn, questions):
    r1 = r5 = r20 = mrr = 0.0
    for q, gold in questions:
        ranked = list(rank_fn(q))
        if gold in ranked:
            r = ranked.index(gold) + 1
            r1 += r <= 1
            r5 += r <= 5
            r20 += r <= 20
            mrr += 1 / r if r <= 10 else 0
    n = len(questions)
    return {"R@1": r1 / n, "R@5": r5 / n, "R@20": r20 / n, "MRR@10": mrr / n}


def tokens_of(docs, analyzer):
    titles: dict[str, list[str]] = {}
    out = []
    for d in docs:
        t = titles.get(d.article_id)
        if t is None:
            t = titles[d.article_id] = analyzer.terms(d.title)
        out.append(analyzer.terms(d.text) + t)
    return out


# ----------------------------------------------------------------------------------------------
# engines
# ----------------------------------------------------------------------------------------------

CHILD = r"""
import json, sys, time, numpy as np, psutil
sys.path.insert(0, sys.argv[1])
t = time.perf_counter()
from retrieval.index import BM25Index
imported = time.perf_counter() - t
t = time.perf_counter()
index = BM25Index.load(sys.argv[2])
load = time.perf_counter() - t
rss_loaded = psutil.Process().memory_info().rss / 2**20
questions = json.loads(open(sys.argv[3]).read())
passes = []
for _ in range(2):  # first pass: pages of the mapped index fault in; second pass: warm
    times = []
    for q in questions:
        t = time.perf_counter(); index.search(q, k=10); times.append(time.perf_counter() - t)
    a = np.array(times) * 1000
    passes.append((float(np.percentile(a, 50)), float(np.percentile(a, 99))))
print(json.dumps({"load_s": load, "import_s": imported, "rss_loaded_mb": rss_loaded, "rss_after_mb": psutil.Process().memory_info().rss / 2**20,
                  "p50": passes[1][0], "p99": passes[1][1], "cold_p50": passes[0][0], "cold_p99": passes[0][1]}))
"""


def ranker(index):
    return lambda q: [h.passage_id for h in index.search(q, k=20, per_article=1).hits]


def bench_newsdesk(docs, analyzer, lat_q, qual_q, workdir):
    gc.collect()
    with PeakRSS() as mem:
        t = time.perf_counter()
        index = BM25Index.build(docs, analyzer)
        build = time.perf_counter() - t
    path = workdir / "newsdesk"
    index.save(path)
    size = sum(f.stat().st_size for f in path.iterdir()) / 2**20
    qual = quality(ranker(index), qual_q) if qual_q else None
    del index
    gc.collect()
    qfile = workdir / "questions.json"
    qfile.write_text(json.dumps(lat_q))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), str(path), str(qfile)],
        capture_output=True,
        text=True,
        check=True,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "build_s": build,
        "peak_mb": mem.delta_mb,
        "disk_mb": size,
        "load_s": child["load_s"],
        "import_s": child["import_s"],
        "rss_loaded_mb": child["rss_loaded_mb"],
        "rss_mb": child["rss_after_mb"],
        "p50": child["p50"],
        "p99": child["p99"],
        "cold": (child["cold_p50"], child["cold_p99"]),
        "quality": qual,
    }


def bench_rank_bm25(tokens, analyzer, lat_q, qual_q, k1, b):
    import rank_bm25

    gc.collect()
    with PeakRSS() as mem:
        t = time.perf_counter()
        ref = rank_bm25.BM25Okapi(tokens, k1=k1, b=b)
        build = time.perf_counter() - t

    def top(q, k):
        scores = ref.get_scores(analyzer.terms(q))
        part = np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        return part[np.argsort(-scores[part], kind="stable")]

    p50, p99 = latency(lambda q: top(q, 10), lat_q)
    qual = quality(lambda q: [int(i) for i in top(q, 20)], qual_q) if qual_q else None
    return {
        "build_s": build,
        "peak_mb": mem.delta_mb,
        "p50": p50,
        "p99": p99,
        "quality": qual,
        "n_lat": len(lat_q),
    }


def bench_bm25s(tokens, analyzer, lat_q, qual_q, k1, b, workdir):
    import bm25s

    gc.collect()
    backend = "numba"
    with PeakRSS() as mem:
        t = time.perf_counter()
        try:
            retriever = bm25s.BM25(k1=k1, b=b, backend="numba")
        except Exception:  # numba backend unavailable
            backend = "numpy"
            retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(tokens, show_progress=False)
        build = time.perf_counter() - t
    path = workdir / "bm25s"
    retriever.save(str(path), show_progress=False)
    t = time.perf_counter()
    retriever = bm25s.BM25.load(str(path), mmap=True, show_progress=False)
    if backend == "numba":
        retriever.backend = "numba"
        with __import__("contextlib").suppress(Exception):
            retriever.activate_numba_scorer()
    load = time.perf_counter() - t
    vocab = retriever.vocab_dict

    def top(q, k):
        terms = [t for t in analyzer.terms(q) if t in vocab]
        if not terms:
            return []
        docs, _ = retriever.retrieve(
            [terms], k=k, show_progress=False, n_threads=1, backend_selection=backend
        )
        return [int(d) for d in docs[0]]

    top("warm up", 10)
    cold = latency(lambda q: top(q, 10), lat_q)  # first pass over the memory-mapped index
    p50, p99 = latency(lambda q: top(q, 10), lat_q)
    qual = quality(lambda q: top(q, 20), qual_q) if qual_q else None
    return {
        "build_s": build,
        "peak_mb": mem.delta_mb,
        "load_s": load,
        "p50": p50,
        "p99": p99,
        "quality": qual,
        "backend": backend,
        "cold": cold,
    }


def bench_fts5(tokens, analyzer, lat_q, qual_q, workdir):
    db = workdir / "fts.db"
    gc.collect()
    with PeakRSS() as mem:
        t = time.perf_counter()
        con = sqlite3.connect(db)
        con.execute("CREATE VIRTUAL TABLE p USING fts5(body, tokenize='unicode61')")
        con.executemany(
            "INSERT INTO p(rowid, body) VALUES (?, ?)", ((i, " ".join(ts)) for i, ts in enumerate(tokens))
        )
        con.commit()
        con.execute("INSERT INTO p(p) VALUES ('optimize')")
        con.commit()
        con.close()
        build = time.perf_counter() - t
    t = time.perf_counter()
    con = sqlite3.connect(db)
    con.execute("SELECT count(*) FROM p WHERE p MATCH 'x'").fetchall()
    load = time.perf_counter() - t

    def top(q, k):
        terms = sorted(set(analyzer.terms(q)))
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        return [
            r[0]
            for r in con.execute("SELECT rowid FROM p WHERE p MATCH ? ORDER BY bm25(p) LIMIT ?", (match, k))
        ]

    p50, p99 = latency(lambda q: top(q, 10), lat_q)
    qual = quality(lambda q: top(q, 20), qual_q) if qual_q else None
    con.close()
    return {
        "build_s": build,
        "peak_mb": mem.delta_mb,
        "load_s": load,
        "p50": p50,
        "p99": p99,
        "quality": qual,
        "n_lat": len(lat_q),
    }


# ----------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2k,100k,1m")
    parser.add_argument("--engines", default="newsdesk,rank_bm25,bm25s,fts5")
    parser.add_argument("--questions", type=int, default=2000, help="questions timed per engine")
    parser.add_argument(
        "--slow-questions",
        type=int,
        default=200,
        help="questions timed for stock rank-bm25 at 100k and beyond",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument(
        "--tune", action="store_true", help="only compare BM25 variants, k1, b and titles on SQuAD"
    )
    parser.add_argument(
        "--no-match", action="store_true", help="only calibrate the no-match coverage threshold"
    )
    args = parser.parse_args(argv)
    analyzer = Analyzer()
    if args.tune:
        return tune(analyzer)
    if args.no_match:
        return calibrate(analyzer)
    probe = BM25Index.build([IndexDoc(0, "a", "", "probe", None, "a")], analyzer)
    k1, b = probe.k1, probe.b
    squad_docs, squad_q = squad()
    rng = np.random.default_rng(SEED)
    lat_all = [squad_q[i][0] for i in rng.permutation(len(squad_q))]
    engines = args.engines.split(",")
    rows = []
    for size in args.sizes.split(","):
        print(f"== {size}: loading corpus", file=sys.stderr, flush=True)
        docs = {"2k": lambda: squad_docs, "100k": reuters, "1m": million}[size]()
        qual_q = squad_q if size == "2k" else None
        lat_q = lat_all[: args.questions]
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-{size}-"))
        try:
            tokens = None
            if set(engines) - {"newsdesk"}:
                t = time.perf_counter()
                tokens = tokens_of(docs, analyzer)
                tokenize_s = time.perf_counter() - t
                rows.append(
                    {
                        "size": size,
                        "engine": "(shared tokenization for the others)",
                        "n": len(docs),
                        "build_s": tokenize_s,
                    }
                )
            for engine in engines:
                print(f"   {size} {engine} ({len(docs):,} passages)", file=sys.stderr, flush=True)
                if engine == "newsdesk":
                    res = bench_newsdesk(docs, analyzer, lat_q, qual_q, workdir)
                elif engine == "rank_bm25":
                    if size == "1m":
                        res = {"skipped": "not run at 1M: about 3 s per question and several GB of dicts"}
                    else:
                        n = len(lat_q) if size == "2k" else args.slow_questions
                        res = bench_rank_bm25(tokens, analyzer, lat_q[:n], qual_q, k1, b)
                elif engine == "bm25s":
                    res = bench_bm25s(tokens, analyzer, lat_q, qual_q, k1, b, workdir)
                elif engine == "fts5":
                    n = len(lat_q) if size != "1m" else min(len(lat_q), 1000)
                    res = bench_fts5(tokens, analyzer, lat_q[:n], qual_q, workdir)
                else:
                    raise SystemExit(f"unknown engine {engine}")
                res.update(size=size, engine=engine, n=len(docs))
                print(json.dumps(res), file=sys.stderr, flush=True)
                rows.append(res)
                gc.collect()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        del docs, tokens
        gc.collect()
    table = render(rows, args)
    print(table)
    if args.out:
        write_table(args.out, table)


def write_table(path: Path, table: str) -> None:
    """Replace the results table in ``path`` (the rest of RESULTS.md is prose kept by hand), or write it."""
    if not path.exists():
        path.write_text(table, encoding="utf-8")
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("| size | engine")), None)
    if start is None:
        path.write_text("".join(lines) + "\n" + table, encoding="utf-8")
        return
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    new_rows = [line for line in table.splitlines(keepends=True) if line.startswith("|")]
    path.write_text("".join(lines[:start] + new_rows + lines[end:]), encoding="utf-8")


def tune(analyzer):
    docs, questions = squad()
    untitled = [IndexDoc(d.passage_id, d.article_id, "", d.text, None, d.dup_key) for d in docs]
    print("| variant | k1 | b | title | R@1 | R@5 | R@20 | MRR@10 |\n|---|---|---|---|---|---|---|---|")
    grid = [
        (v, k1, b) for v in ("okapi", "plus") for k1 in (0.6, 0.9, 1.2, 1.5, 2.0) for b in (0.5, 0.75, 0.9)
    ]
    grid += [("l", 1.2, 0.75), ("l", 0.9, 0.75)]
    for variant, k1, b in grid:
        for title in (True, False) if (k1, b) == (0.9, 0.75) else (True,):
            index = BM25Index.build(docs if title else untitled, analyzer, variant=variant, k1=k1, b=b)
            q = quality(ranker(index), questions)
            print(
                f"| {variant} | {k1} | {b} | {'yes' if title else 'no'} | {q['R@1']:.4f} | {q['R@5']:.4f} | "
                f"{q['R@20']:.4f} | {q['MRR@10']:.4f} |",
                flush=True,
            )


def calibrate(analyzer):
    """Coverage of the best of the top 5 passages for answerable and unanswerable questions."""
    squad_docs, squad_q = squad()
    bbc_docs = bbc()
    squad_index = BM25Index.build(squad_docs, analyzer)
    bbc_index = BM25Index.build(bbc_docs, analyzer)
    rng = np.random.default_rng(SEED)
    # BBC-style questions: built from BBC titles and lead sentences, asked of the SQuAD passages
    with gzip.open(SHARED / "bbc" / "bbc.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    bbc_q = []
    for i in rng.permutation(len(rows))[:1500]:
        row = rows[i]
        lead = row["body"].split("\n\n")[0].split(". ")[0][:120]
        bbc_q += [f"What happened with {row['title']}?", f"Why {lead}?"]

    def best(index, question):
        hits = index.search(question, k=5, per_article=1, min_coverage=0.0).hits
        return max((h.coverage for h in hits), default=0.0)

    real = np.array([best(squad_index, q) for q, _ in squad_q])
    squad_to_bbc = np.array([best(bbc_index, q) for q, _ in squad_q[::3]])
    bbc_to_squad = np.array([best(squad_index, q) for q in bbc_q])
    print(
        f"| threshold | SQuAD -> SQuAD refused ({len(real)}) | SQuAD -> BBC refused ({len(squad_to_bbc)}) | "
        f"BBC-style -> SQuAD refused ({len(bbc_to_squad)}) |\n|---|---|---|---|"
    )
    for th in (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6):
        print(
            f"| {th:.2f} | {np.mean(real < th):.4f} | {np.mean(squad_to_bbc < th):.4f} | "
            f"{np.mean(bbc_to_squad < th):.4f} |"
        )


def render(rows, args):
    def f(x, fmt):
        return "-" if x is None else format(x, fmt)

    lines = [
        "| size | engine | build s | build peak MB | load s | RSS MB loaded -> after queries | p50 ms | p99 ms | R@1 | R@5 | R@20 | MRR@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["engine"] + (f" ({r['backend']})" if "backend" in r else "")
        if "n_lat" in r and r["n_lat"] < args.questions:
            name += f" [{r['n_lat']} q]"
        if "skipped" in r:
            lines.append(f"| {r['size']} | {name} | skipped: {r['skipped']} |||||||||| ")
            continue
        if "cold" in r:
            name += f" (first pass: {r['cold'][0]:.3f} / {r['cold'][1]:.3f})"
        if "rss_loaded_mb" in r:
            r["load_s_text"] = f"{r['load_s']:.3f} (+{r['import_s']:.2f} import)"
            r["rss_text"] = f"{r['rss_loaded_mb']:.0f} -> {r['rss_mb']:.0f}"
        q = r.get("quality") or {}
        lines.append(
            f"| {r['size']} ({r['n']:,}) | {name} | {f(r.get('build_s'), '.1f')} | {f(r.get('peak_mb'), '.0f')} | "
            f"{r.get('load_s_text') or f(r.get('load_s'), '.3f')} | {r.get('rss_text', '-')} | {f(r.get('p50'), '.3f')} | "
            f"{f(r.get('p99'), '.3f')} | {f(q.get('R@1'), '.4f')} | {f(q.get('R@5'), '.4f')} | "
            f"{f(q.get('R@20'), '.4f')} | {f(q.get('MRR@10'), '.4f')} |"
        )
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GB RAM, Python {platform.python_version()}"
    )
    return "\n".join(lines) + f"\n\nMachine: {machine}\n"


if __name__ == "__main__":
    main()
