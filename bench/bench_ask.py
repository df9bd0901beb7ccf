"""``newsdesk ask`` per question over Reuters-21578, before (a git ref) and after (this tree), side by side.

    python bench/bench_ask.py --runs 5 --before main

Each tree ingests ``../shared/corpora/news-large/reuters21578.jsonl.gz`` into its own database (not timed).
Then, in turn for each run, each tree answers 1,000 SQuAD dev questions (drawn as ``bench_retrieval.py``'s latency
questions: ``numpy.random.default_rng(20240607).permutation``) with ``newsdesk ask --json --db X.db`` reading them
from standard input, and the first of them alone. Per question = (CPU of the 1,000 - CPU of the one) / 1,000: what a
question costs once the process has started and loaded its index. CPU is the child's user + system time
(``wait4``); ``PYTHONHASHSEED=0``. The ratio after / before is taken within each run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import _env, _export, _ratio_line  # noqa: E402

REUTERS = SHARED / "corpora" / "news-large" / "reuters21578.jsonl.gz"
SQUAD = SHARED / "corpora" / "squad" / "dev-v1.1.json.gz"
SEED = 20240607


def questions(n: int) -> list[str]:
    import numpy as np

    with gzip.open(SQUAD, "rt", encoding="utf-8") as raw:
        data = json.load(raw)
    qs = [qa["question"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]]
    order = np.random.default_rng(SEED).permutation(len(qs))
    return [" ".join(qs[i].split()) for i in order[:n]]


def _run(tree: Path, args: list[str], stdin: Path | None = None) -> tuple[float, float]:
    """CPU seconds and peak MiB of ``python -m bot.cli ARGS`` from ``tree``."""
    env = {**_env(tree), "PYTHONHASHSEED": "0"}
    with open(stdin or os.devnull, "rb") as fin, open(os.devnull, "wb") as fout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args], stdin=fin, stdout=fout, env=env, cwd=tree
        )
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{tree}: bot.cli {' '.join(args)} failed")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", default="main", help="git ref of the 'before' tree (empty: skip it)")
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)"
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="newsdesk-bench-ask-"))
    work.mkdir(parents=True, exist_ok=True)
    trees = {"after": REPO}
    if args.before:
        trees = {"before": _export(args.before, work / "before"), **trees}
    corpus = work / "reuters"
    corpus.mkdir(exist_ok=True)
    shutil.copy(REUTERS, corpus / REUTERS.name)
    asked = questions(args.questions)
    many, one = work / "questions.txt", work / "question.txt"
    many.write_text("".join(q + "\n" for q in asked), encoding="utf-8")
    one.write_text(asked[0] + "\n", encoding="utf-8")
    dbs = {}
    for name, tree in trees.items():
        dbs[name] = work / f"{name}.db"
        for old in work.glob(f"{name}.db*"):
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        _run(tree, ["ingest", str(corpus), "--db", str(dbs[name]), "--json"])
    print(f"workdir {work}; load average {os.getloadavg()[0]:.1f}", flush=True)
    got: dict[str, dict[str, list[float]]] = {n: {"many": [], "one": [], "peak": []} for n in trees}
    ratios = []
    for run in range(1, args.runs + 1):
        per_q = {}
        for name, tree in trees.items():
            cpu, peak = _run(tree, ["ask", "--json", "--db", str(dbs[name])], many)
            cpu_one, _ = _run(tree, ["ask", "--json", "--db", str(dbs[name])], one)
            got[name]["many"].append(cpu)
            got[name]["one"].append(cpu_one)
            got[name]["peak"].append(peak)
            per_q[name] = cpu
            print(f"run {run} {name}: {cpu:.3f} s for {len(asked)}, {cpu_one:.3f} s for one", flush=True)
        if len(per_q) == 2:
            ratios.append(per_q["after"] / per_q["before"])
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(
        "| code | CPU s (median, all) | one question s | per question ms | peak MiB |\n|---|---|---|---|---|"
    )
    for name, g in got.items():
        m, o = statistics.median(g["many"]), statistics.median(g["one"])
        runs = ", ".join(f"{x:.2f}" for x in g["many"])
        print(
            f"| {name} | {m:.3f} ({runs}) | {o:.3f} | {(m - o) / len(asked) * 1000:.2f} | "
            f"{statistics.median(g['peak']):.0f} |"
        )
    if ratios:
        print(_ratio_line(ratios))


if __name__ == "__main__":
    main()
