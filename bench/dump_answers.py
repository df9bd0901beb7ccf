"""The JSON answers of 2,180 questions, to check that a change leaves every answer as it was.

    PYTHONHASHSEED=0 python bench/dump_answers.py OUT.jsonl --reuters-db R.db --questions Q.txt

Writes one line per question (``NewsService.search(...).to_json()`` without ``took_ms``): the 160 dev
questions over BBC News and the seed article (follow-ups with their context, k=5), our 20 BBC questions
(k=3), 1,000 SQuAD dev questions drawn with ``random.Random(5)`` over SQuAD dev (k=5), and the questions of
``--questions`` (one a line) over ``--reuters-db``, an ingested database (k=3). Run it from each checkout
(``PYTHONPATH`` set to it) and compare the files with ``cmp``. ``PYTHONHASHSEED=0``: equally rare missing
words are listed in set order, which differs between two processes of the same code otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from answers import SQUAD, bbc_with_seed  # noqa: E402

from retrieval.service import NewsService  # noqa: E402


def _line(answer) -> str:
    data = answer.to_json()
    data.pop("took_ms", None)
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--reuters-db", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="newsdesk-dump-") as tmp:
        work = Path(tmp)
        service = bbc_with_seed(work)
        dev = [json.loads(x) for x in (SHARED / "eval" / "dev-questions.jsonl").read_text().splitlines() if x]
        for q in dev:
            context = [q["context"]] if q.get("context") else []
            lines.append(_line(service.search(q["question"], k=5, context=context)))
        ours = [json.loads(x) for x in (REPO / "bench" / "bbc_questions.jsonl").read_text().splitlines() if x]
        lines += [_line(service.search(q["question"], k=3)) for q in ours]
        service.close()

        with gzip.open(SQUAD, "rt", encoding="utf-8") as raw:
            data = json.load(raw)
        records, questions = [], []
        for a in data["data"]:
            for p in a["paragraphs"]:
                pid = f"squad/{len(records)}"
                records.append({"id": pid, "title": a["title"].replace("_", " "), "body": p["context"]})
                questions.extend(qa["question"] for qa in p["qas"])
        corpus = work / "squad-corpus"
        corpus.mkdir()
        (corpus / "squad.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        service = NewsService(work / "squad.db", corpus)
        service.reload()
        lines += [_line(service.search(q, k=5)) for q in random.Random(5).sample(questions, 1000)]
        service.close()

    service = NewsService(args.reuters_db, work)  # the corpus folder is not read: no reload
    asked = [q for q in args.questions.read_text(encoding="utf-8").splitlines() if q.strip()]
    lines += [_line(service.search(q, k=3)) for q in asked]
    service.close()
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} answers written to {args.out}")


if __name__ == "__main__":
    main()
