"""A large corpus for ingest benchmarks: Reuters-21578 replicated with new ids and lightly varied text.

Copy 0 is Reuters as it is; every further copy gives each article a new id and varies its text a little,
deterministically (``--seed``): about one word in twenty is replaced by another word of Reuters, numbers
are nudged, and the date moves by the copy number in weeks. So the copies are new articles (other
content hashes, a vocabulary that keeps growing) that read like the real ones.

    python bench/make_big_corpus.py /tmp/big --articles 200000                # JSON Lines, 1,000 a file
    python bench/make_big_corpus.py /tmp/big --articles 50000 --format txt    # one scraped page a file

The folder is replaced. The corpus is read from ``../shared/corpora/news-large/reuters21578.jsonl.gz``.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REUTERS = REPO.parent / "shared" / "corpora" / "news-large" / "reuters21578.jsonl.gz"
WORD = re.compile(r"[A-Za-z]{3,}|\d+(?:[.,]\d+)*")
PER_FILE = 1000


def _reuters(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _vary(text: str, rng: random.Random, pool: list[str]) -> str:
    def swap(m: re.Match) -> str:
        word = m.group(0)
        if word[0].isdigit():
            if "," not in word and word.count(".") <= 1 and rng.random() < 0.3:
                value = float(word) * (1 + rng.uniform(-0.2, 0.2))
                return f"{value:.{len(word.split('.')[1])}f}" if "." in word else str(max(1, round(value)))
            return word
        if rng.random() < 0.05:
            new = rng.choice(pool)
            return new.upper() if word.isupper() else new.capitalize() if word[0].isupper() else new
        return word

    return WORD.sub(swap, text)


def articles(count: int, seed: int, source: Path = REUTERS) -> Iterator[dict]:
    """``count`` articles: Reuters in its order, then varied copies of it with new ids."""
    base = _reuters(source)
    pool = sorted({w.lower() for row in base[:3000] for w in WORD.findall(row["body"] or "") if w.isalpha()})
    n = 0
    copy = 0
    while n < count:
        for row in base:
            if n >= count:
                return
            if copy == 0:
                yield row
            else:
                rng = random.Random(seed * 1_000_003 + n)
                published = row.get("published")
                if published:
                    day = datetime.datetime.fromisoformat(published) + datetime.timedelta(weeks=copy)
                    published = day.isoformat()
                yield {
                    **row,
                    "id": f"copy{copy}/{row['id'].rsplit('/', 1)[-1]}",
                    "published": published,
                    "title": _vary(row["title"] or "", rng, pool),
                    "body": _vary(row["body"] or "", rng, pool),
                }
            n += 1
        copy += 1


def _scraped_page(row: dict) -> str:
    """The user's scraped format: title, blank, title again, date line, blank, paragraphs."""
    title = row["title"] or (row["body"] or "").split("\n", 1)[0][:80] or row["id"]
    date = ""
    if row.get("published"):
        date = datetime.datetime.fromisoformat(row["published"]).strftime("%a %b %d, %Y %H:%M:%S")
    body = row["body"] or title
    return f"{title}\n\n{title}\n{date}\n\n{body}"


def write_corpus(folder: Path, count: int, *, seed: int = 20261203, fmt: str = "jsonl") -> int:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    written = 0
    out = None
    try:
        for n, row in enumerate(articles(count, seed)):
            part = n // PER_FILE
            if fmt == "jsonl":
                if n % PER_FILE == 0:
                    if out is not None:
                        out.close()
                    out = open(folder / f"part-{part:05d}.jsonl", "w", encoding="utf-8")  # noqa: SIM115
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                sub = folder / f"{part:05d}"
                if n % PER_FILE == 0:
                    sub.mkdir()
                name = row["id"].replace("/", "-")
                (sub / f"{name}.txt").write_text(_scraped_page(row), encoding="utf-8")
            written += 1
    finally:
        if out is not None:
            out.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--format", choices=("jsonl", "txt"), default="jsonl")
    args = parser.parse_args()
    n = write_corpus(args.folder, args.articles, seed=args.seed, fmt=args.format)
    print(f"wrote {n:,} articles to {args.folder} ({args.format})")


if __name__ == "__main__":
    main()
