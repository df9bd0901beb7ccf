"""Where the tests' data lives: the one place that names it.

- In the repository: the sample corpus in ``data/articles`` (with the seed article, the one sample of the
  scraped format), and small corpora the tests write themselves (``tests/web_corpus.py`` and the tests' own
  helpers). Every test that needs only these runs on a clone of the repository alone.
- Beside the repository, in ``../shared/corpora``: the large public corpora (BBC News, 2,225 articles), read by
  the tests that measure the whole set. Those tests are marked ``shared_corpus``; when the folder is absent they
  skip with one reason, except under CI (``CI=true``), where that is a failure. See ``tests/README.md``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = REPO / "data" / "articles"
SEED = SAMPLE_CORPUS / "000_7259aed06ac303ba.txt"

SHARED_CORPORA = REPO.parent / "shared" / "corpora"
BBC_TAR = SHARED_CORPORA / "bbc" / "bbc-fulltext.tar.gz"
BBC_JSONL = SHARED_CORPORA / "bbc" / "bbc.jsonl.gz"

SHARED_CORPUS_MISSING = f"needs the large corpora in {SHARED_CORPORA} (absent here; CI has them)"


def shared_corpora_present() -> bool:
    return SHARED_CORPORA.is_dir()


def need(path: Path) -> Path:
    """``path`` inside the shared corpora; a test that gets here without it is marked wrongly or the data is gone."""
    if not path.exists():
        if os.environ.get("CI") == "true" or shared_corpora_present():
            pytest.fail(f"test data missing: {path}")
        pytest.skip(SHARED_CORPUS_MISSING)
    return path


# A news-like corpus made on the spot, for the tests that need hundreds of passages of varied text but no
# particular article: words drawn with Zipf's law from a news vocabulary, so that common and rare terms, long
# and short passages, and shared titles all occur as in a real archive.
_NEWS_TEXT = """
government election minister tax party vote labour council bank rates market shares profit company
economy growth prices oil police court judge trial report said says year years week month people
country city town state public health hospital school pupils teachers club match goal season league
player coach team film music award star festival band album director phone mobile internet software
computer users online game games technology firm deal sales jobs workers union strike pay pension
budget spending plan plans chancellor prime leader campaign policy law bill reform foreign trade
europe european china india america russia africa london paris washington record growth fell rose
rise fall quarter analysts investors chief executive board talks agreement officials security army
war peace troops border election voters poll result results final cup injury title champion win
lost won draw break new old first last next early late high low big small major minor
"""
_NEWS_WORDS = list(dict.fromkeys(_NEWS_TEXT.split()))


def generated_news(n_articles: int, seed: int = 0) -> list[dict]:
    """``n_articles`` rows shaped like the BBC JSON Lines (``id``, ``title``, ``body``), the same for a seed."""
    import random

    rng = random.Random(seed)
    vocab = _NEWS_WORDS + [f"{a}{b}" for a in ("kar", "mel", "dov", "tes", "pul") for b in ("an", "ik", "os")]
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    rng.shuffle(vocab)

    def sentence() -> str:
        words = rng.choices(vocab, weights, k=rng.randint(5, 24))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), f"{rng.randint(2, 999)}%")
        return " ".join(words).capitalize() + "."

    rows = []
    for i in range(n_articles):
        title = " ".join(rng.choices(vocab, weights, k=rng.randint(3, 7))).capitalize()
        paragraphs = [
            " ".join(sentence() for _ in range(rng.randint(1, 5))) for _ in range(rng.randint(2, 8))
        ]
        rows.append({"id": f"generated/{i:04d}", "title": title, "body": "\n\n".join(paragraphs)})
    return rows


def wait_for_moment(proc: subprocess.Popen, log_path: Path, moment: str, *, timeout: float) -> None:
    """Wait until the child ingest ``proc`` prints ``MOMENT <moment>`` to ``log_path`` (the kill tests' children
    mark the point they reached, then the test kills them there); fails if it ends or takes too long first."""
    deadline = time.monotonic() + timeout
    while f"MOMENT {moment}" not in log_path.read_text():
        assert proc.poll() is None, f"the ingest ended before the kill: {log_path.read_text()}"
        assert time.monotonic() < deadline, f"the ingest never reached the moment {moment!r} to kill it"
        time.sleep(0.01)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux: read from /proc)."""
    found, below = [], [pid]
    while below:
        parent = below.pop()
        try:
            with open(f"/proc/{parent}/task/{parent}/children", encoding="ascii") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            children = []
        found.extend(children)
        below.extend(children)
    return found


def process_alive(pid: int) -> bool:
    """``pid`` runs (a zombie, dead but not yet reaped, does not count). Linux: read from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
