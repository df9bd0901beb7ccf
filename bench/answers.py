"""Do the answers answer? The development question set and SQuAD dev, scored the same way every time.

    python bench/answers.py                    # both sets, this checkout
    python bench/answers.py --squad-limit 2000 # a quicker SQuAD pass (the first N questions)
    python bench/answers.py --json             # one JSON object with every figure

* **Dev set** (``../shared/eval/dev-questions.jsonl`` over BBC News plus the seed article): the figures of
  ``../shared/eval/score.py`` (its README says how answers are checked): r@1, r@3, quoted@1, quoted@3,
  followup@3, abstain, false_abstain. Follow-ups are asked with their earlier question as context.
  Also our own 20 questions written from randomly drawn BBC articles (``bench/bbc_questions.jsonl``):
  the answer inside the first / first three quotes.
* **SQuAD v1.1 dev** (2,067 Wikipedia paragraphs, each an article titled with its page's title; 10,570
  questions): r@5 (the question's paragraph among the first five results) and quoted@3 (one of the human
  answers inside one of the first three quotes).

The service is used in process (the same code path as ``newsdesk ask``); a checkout whose ``search`` has no
``context`` parameter gets follow-ups as "earlier question + question", as it would have searched them.
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"
EVAL = SHARED / "eval"
sys.path.insert(0, str(EVAL))

from retrieval.service import NewsService  # noqa: E402

BBC_TAR = SHARED / "corpora" / "bbc" / "bbc-fulltext.tar.gz"
SEED = SHARED / "corpora" / "seed" / "000_7259aed06ac303ba.txt"
SQUAD = SHARED / "corpora" / "squad" / "dev-v1.1.json.gz"


def _searcher(service: NewsService):
    takes_context = "context" in inspect.signature(service.search).parameters

    def search(question: str, context: list[str], k: int):
        if takes_context:
            return service.search(question, k=k, context=context)
        return service.search(" ".join([*context, question])[-500:], k=k)

    return search


def bbc_with_seed(work: Path) -> NewsService:
    """The development set's archive: BBC News and the seed article, ingested into ``work``."""
    corpus = work / "bbc-corpus"
    corpus.mkdir()
    with tarfile.open(BBC_TAR) as tar:
        tar.extractall(corpus, filter="data")
    (corpus / SEED.name).write_bytes(SEED.read_bytes())
    service = NewsService(work / "bbc.db", corpus)
    service.reload()
    return service


def dev_set(work: Path) -> dict:
    import score  # ../shared/eval/score.py

    service = bbc_with_seed(work)
    search = _searcher(service)
    questions = [json.loads(line) for line in (EVAL / "dev-questions.jsonl").read_text().splitlines() if line]
    answers, took = [], []
    for q in questions:
        context = [q["context"]] if q.get("context") else []
        started = time.perf_counter()
        answers.append(search(q["question"], context, 5).to_json())
        took.append((time.perf_counter() - started) * 1000)
    figures, _ = score.score(questions, answers)
    # Our own 20 questions written from randomly drawn BBC articles (bench/bbc_questions.jsonl).
    ours = [
        json.loads(line) for line in (REPO / "bench" / "bbc_questions.jsonl").read_text().splitlines() if line
    ]
    q1 = q3 = 0
    for q in ours:
        quotes = [r.excerpt.text for r in search(q["question"], [], 3).results]
        q1 += bool(quotes) and q["answer"] in quotes[0]
        q3 += any(q["answer"] in quote for quote in quotes)
    figures["ours_quoted@1"], figures["ours_quoted@3"] = q1 / len(ours), q3 / len(ours)
    service.close()
    return {**figures, "questions": len(questions), "median_ms": statistics.median(took)}


def squad(work: Path, limit: int | None) -> dict:
    with gzip.open(SQUAD, "rt", encoding="utf-8") as raw:
        data = json.load(raw)
    records, questions = [], []
    for a in data["data"]:
        for p in a["paragraphs"]:
            pid = f"squad/{len(records)}"
            records.append({"id": pid, "title": a["title"].replace("_", " "), "body": p["context"]})
            for qa in p["qas"]:
                questions.append((qa["question"], pid, [x["text"] for x in qa["answers"]]))
    corpus = work / "squad-corpus"
    corpus.mkdir()
    with open(corpus / "squad.jsonl", "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    service = NewsService(work / "squad.db", corpus)
    service.reload()
    search = _searcher(service)
    if limit:
        questions = questions[:limit]
    r5 = q3 = 0
    took = []
    for question, pid, golds in questions:
        started = time.perf_counter()
        answer = search(question, [], 5)
        took.append((time.perf_counter() - started) * 1000)
        ids = [r.article_id for r in answer.results]
        r5 += pid in ids[:5]
        quotes = [r.excerpt.text for r in answer.results[:3]]
        q3 += any(g in quote for g in golds for quote in quotes)
    service.close()
    n = max(len(questions), 1)
    return {
        "questions": len(questions),
        "r@5": r5 / n,
        "quoted@3": q3 / n,
        "median_ms": statistics.median(took),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--squad-limit", type=int, default=None, help="score only the first N SQuAD questions"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    for path in (BBC_TAR, SEED, SQUAD, EVAL / "score.py"):
        if not path.exists():
            sys.exit(f"bench/answers.py needs the shared corpora beside the repository: {path} is missing")
    with tempfile.TemporaryDirectory(prefix="newsdesk-answers-") as tmp:
        work = Path(tmp)
        figures = {"dev": dev_set(work), "squad": squad(work, args.squad_limit)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    dev, sq = figures["dev"], figures["squad"]
    print(
        "dev ({questions} questions): ".format(**dev)
        + " ".join(f"{k}={dev[k]:.3f}" for k in score_keys(dev))
        + f"  median {dev['median_ms']:.2f} ms"
    )
    print(
        f"squad ({sq['questions']} questions): r@5={sq['r@5']:.3f} quoted@3={sq['quoted@3']:.3f}"
        f"  median {sq['median_ms']:.2f} ms"
    )


def score_keys(figures: dict) -> list[str]:
    keys = ("r@1", "r@3", "quoted@1", "quoted@3", "followup@3", "abstain", "false_abstain")
    return [k for k in (*keys, "ours_quoted@1", "ours_quoted@3") if k in figures]


if __name__ == "__main__":
    main()
