"""A small corpus for the web page tests: a scraped article with related items, a long read whose
30th passage is the one questions point at, and an article full of markup that must stay text."""

from __future__ import annotations

from pathlib import Path

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = "<img src=x onerror=alert(1)>"

LONG_READ_ID = "local/long-read"
LONG_READ_TITLE = "The Long Read: A Year on the Coast Road"
TARGET_ORDINAL = 30
TARGET_PASSAGE = (
    "At the last bend a quokka stood beside the road and watched the old zeppelin drift over the "
    "cliffs towards the lighthouse."
)
QUESTION = "where did the quokka watch the zeppelin?"

BANK_ID = "business/312"
BANK_TITLE = "Harbour Bank Raises Rates"

HOSTILE_ID = "opinion/hostile"
HOSTILE_TITLE = f"Markup {HOSTILE_SCRIPT} in a title {HOSTILE_IMG}"
HOSTILE_BODY = f"This column quotes {HOSTILE_SCRIPT} and {HOSTILE_IMG} as plain text & nothing else."

_FILLER = [
    "The coast road winds past fishing villages, small harbours and long beaches of grey sand.",
    "Farmers along the route grow barley and potatoes in fields sheltered by stone walls.",
    "In winter the ferries run less often and the cafes close early in the afternoon.",
    "Walkers come in spring for the flowers on the headlands and the seabird colonies.",
    "The council has promised to repair the bridge at the river mouth before the summer.",
]


def long_read_text() -> str:
    paragraphs = []
    for n in range(40):
        if n == TARGET_ORDINAL:
            paragraphs.append(TARGET_PASSAGE)
        else:
            paragraphs.append(f"Mile {n + 1}. {_FILLER[n % len(_FILLER)]} {_FILLER[(n + 2) % len(_FILLER)]}")
    return LONG_READ_TITLE + "\n\n" + "\n\n".join(paragraphs) + "\n"


BANK_TEXT = (
    f"{BANK_TITLE}\n\n{BANK_TITLE}\nTue Jun 21, 2016 12:02:16\n\n"
    "The harbour bank raised its rate to 4.75% on Tuesday, the first rise in two years.\n\n"
    "Savers welcomed the move; borrowers with variable mortgages will pay more from July.\n\n\n\n"
    'string(200) "[{"id":"local/long-read","title":"A <b>long</b> read","pic":"/2016/06/19/a.jpg"} ,'
    '{"id":"999999","title":"An article the archive lacks","pic":"/2016/06/20/b.jpg"} ]"\n'
)


def write_corpus(folder: Path) -> Path:
    files = {
        f"{LONG_READ_ID}.txt": long_read_text(),
        f"{BANK_ID}.txt": BANK_TEXT,
        f"{HOSTILE_ID}.txt": f"{HOSTILE_TITLE}\n\n{HOSTILE_BODY}\n\nA second paragraph about nothing much.\n",
    }
    for relpath, text in files.items():
        path = folder / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def build_db(folder: Path, target: str | None = None) -> str:
    """Write the corpus under ``folder`` and ingest it into ``target`` (a PostgreSQL URL, or an SQLite path;
    default ``folder/newsdesk.db``). A PostgreSQL database's index goes to ``folder/index-cache``."""
    from retrieval.service import NewsService

    corpus = write_corpus(folder / "articles")
    db = target or str(folder / "newsdesk.db")
    service = NewsService(db, corpus, index_cache=folder / "index-cache")
    try:
        summary = service.reload()
        assert summary.failed == 0, summary.failures
    finally:
        service.close()
    return db
