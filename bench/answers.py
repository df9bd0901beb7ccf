"""Do the top excerpts quote the answer? Hand-written factual questions over the BBC corpus.

    python bench/answers.py [--k 3]

Each question in ``bench/bbc_questions.jsonl`` (written by us from 20 randomly drawn BBC articles) names the
article it was written from and a short answer string. Counted: the answer inside the first result's excerpt
(top-1 quote, from any article: several may state the fact), inside any of the top k excerpts (top-k quote), and
whether the first result is the article the question was written from.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from retrieval.service import NewsService  # noqa: E402

BBC_TAR = REPO.parent / "shared" / "corpora" / "bbc" / "bbc-fulltext.tar.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="newsdesk-answers-"))
    with tarfile.open(BBC_TAR) as tar:
        tar.extractall(work, filter="data")
    service = NewsService(work / "n.db", work / "bbc")
    service.reload()
    questions = [
        json.loads(line) for line in (REPO / "bench" / "bbc_questions.jsonl").read_text().splitlines()
    ]
    top1 = topk = same_article = 0
    for q in questions:
        answer = service.search(q["question"], k=args.k)
        quotes = [r for r in answer.results if q["answer"] in r.excerpt.text]
        first = answer.results[0] if answer.results else None
        hit1 = first is not None and q["answer"] in first.excerpt.text
        top1 += hit1
        topk += bool(quotes)
        same_article += first is not None and first.article_id == q["article"]
        mark = "ok " if hit1 else ("top" if quotes else "MISS")
        shown = first.excerpt.text[:110] if first else "(no match)"
        print(f"{mark:4} {q['question']}\n     -> {first.article_id if first else '-'}: {shown}")
    n = len(questions)
    print(
        f"\n{n} questions: answer quoted by the first result {top1}/{n} ({top1 / n:.0%}), "
        f"within the top {args.k} {topk}/{n} ({topk / n:.0%}); first result is the source article "
        f"{same_article}/{n}"
    )


if __name__ == "__main__":
    main()
