"""One search process's CPU per question, before (a git ref) and after (this tree), side by side.

    python bench/bench_search_process.py --runs 3 --before main

Each tree ingests the BBC News corpus (``../shared/corpora/bbc``) into its own database (not timed). The questions
are ``load_bot.py``'s (article titles and phrases from passages, a few with no answer; seed 11), the same for both
trees. Then, in turn for each run, each tree starts one search process (``retrieval.search_process``, as the bot
does) from a fresh interpreter, asks it 20 questions to warm up, then the rest in bursts of 20 (as members ask in
``load_bot.py``), and reads the search process's CPU (user + system, ``/proc/PID/stat``) around them. Nothing else
runs in the search process meanwhile, so this is the search's own cost, without the bot's event loop and the stub
competing for the cores as they do in ``load_bot.py`` (where the same change is often lost in the noise).
The ratio after / before is taken within each run.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO))

from bench_ingest import _env, _export, _ratio_line  # noqa: E402

BBC = SHARED / "corpora" / "bbc"

# Run in each tree's own interpreter: one search process, its CPU around the questions after the warm-up.
DRIVER = r"""
import asyncio, json, os, sys, time
from retrieval import NewsService, SearchProcesses

def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

async def main(db, corpus, questions, warm, burst):
    service = NewsService(db, corpus)
    service.snapshot  # the version served, which the search process answers from
    procs = SearchProcesses(service, 1)
    procs.start()
    deadline = time.monotonic() + 120
    while procs.answering < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the search process did not start")
        await asyncio.sleep(0.05)
    pid = procs.pids()[0]
    ask = lambda q: procs.search(question=q, k=3, offset=0, context=[])
    for q in questions[:warm]:
        if await ask(q) is None:
            raise SystemExit("the search process did not answer")
    rest = questions[warm:]
    before, started = cpu(pid), time.perf_counter()
    for at in range(0, len(rest), burst):
        await asyncio.gather(*(ask(q) for q in rest[at : at + burst]))
    used, wall = cpu(pid) - before, time.perf_counter() - started
    await procs.close()
    service.close()
    print(json.dumps({"cpu_ms": used * 1000 / len(rest), "wall_ms": wall * 1000 / len(rest)}))

db, corpus, path, warm, burst = sys.argv[1:6]
asyncio.run(main(db, corpus, json.load(open(path)), int(warm), int(burst)))
"""


def _ingest(tree: Path, db: Path) -> None:
    for old in db.parent.glob(f"{db.name}*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", str(BBC), "--db", str(db), "--json"],
        env=_env(tree),
        cwd=tree,
        stdout=subprocess.DEVNULL,
        check=True,
    )


def _measure(tree: Path, db: Path, questions: Path, warm: int, burst: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, str(db), str(BBC), str(questions), str(warm), str(burst)],
        env=_env(tree),
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default="main", help="git ref of the 'before' tree (empty: skip it)")
    parser.add_argument("--questions", type=int, default=600, help="questions measured (after 20 to warm up)")
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)"
    )
    args = parser.parse_args()
    if not BBC.is_dir():
        raise SystemExit(f"the BBC News corpus is not at {BBC}")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="newsdesk-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    trees = {"after": REPO}
    if args.before:
        trees = {"before": _export(args.before, work / "before"), **trees}
    dbs = {name: work / f"{name}.db" for name in trees}
    for name, tree in trees.items():
        _ingest(tree, dbs[name])

    from load_bot import questions_from

    from retrieval.service import NewsService

    service = NewsService(dbs["after"], BBC)
    asked = questions_from(service, 20 + args.questions, seed=11)
    service.close()
    questions = work / "questions.json"
    questions.write_text(json.dumps(asked), encoding="utf-8")
    print(f"workdir {work}; load average {os.getloadavg()[0]:.1f}", flush=True)
    got: dict[str, list[float]] = {name: [] for name in trees}
    ratios = []
    for run in range(1, args.runs + 1):
        for name, tree in trees.items():
            figures = _measure(tree, dbs[name], questions, 20, args.burst)
            got[name].append(figures["cpu_ms"])
            print(
                f"run {run} {name}: {figures['cpu_ms']:.3f} ms CPU a question ({figures['wall_ms']:.3f} ms wall)",
                flush=True,
            )
        if len(got) == 2:
            ratios.append(got["after"][-1] / got["before"][-1])
    print(f"load average {os.getloadavg()[0]:.1f}")
    print("| code | search process CPU ms a question (median; each run) |\n|---|---|")
    for name, values in got.items():
        print(f"| {name} | {statistics.median(values):.3f} ({', '.join(f'{v:.3f}' for v in values)}) |")
    if ratios:
        print(_ratio_line(ratios))


if __name__ == "__main__":
    main()
