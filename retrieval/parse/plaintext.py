"""Plain-text articles: a title line, a blank line, then paragraphs separated by blank lines.

This is the BBC layout; Markdown files are read the same way, with an optional ``---`` front matter
block (``title``, ``date``, ``url``, ``category``). The scraped-page layout is
:mod:`retrieval.parse.scraped`; :mod:`retrieval.parse` chooses between them.
"""

from __future__ import annotations

import re

from retrieval.models import Article
from retrieval.parse.common import clean_inline, parse_plain, url_of_line
from retrieval.parse.dates import parse_date

__all__ = ["parse_front_matter", "parse_plain_text"]

_FRONT_MATTER = re.compile(r"---[ \t]*\n((?:[^\n]*\n){0,60}?)---[ \t]*\n")
_FRONT_KEY = re.compile(r"([A-Za-z_][\w-]*)\s*:\s*(.*)")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    """A leading ``---`` block of ``key: value`` lines (Markdown front matter), and the rest."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    fields: dict[str, str] = {}
    for line in m.group(1).split("\n"):
        km = _FRONT_KEY.fullmatch(line.strip())
        if km:
            fields[km.group(1).lower()] = km.group(2).strip().strip("\"'")
        elif line.strip():
            return {}, text
    return fields, text[m.end() :]


def parse_front_matter(
    text: str, *, article_id: str, source: str, category: str | None = None, markdown: bool = False
) -> Article | None:
    """An article whose text opens with a front matter block, or None when it has none."""
    fields, rest = _front_matter(text) if text.startswith("---") else ({}, text)
    if not fields:
        return None
    title = clean_inline(fields.get("title", ""))
    if title:
        rest = title + "\n\n" + rest
    return parse_plain(
        rest,
        article_id=article_id,
        source=source,
        category=fields.get("category") or category,
        scan_header=True,
        markdown=markdown,
        published=parse_date(fields.get("date", "") or fields.get("published", "")),
        url=url_of_line(fields.get("url", "") or fields.get("link", "")),
    )


def parse_plain_text(
    text: str, *, article_id: str, source: str, category: str | None = None, markdown: bool = False
) -> Article:
    """One article in the plain layout: title line, blank line, paragraphs."""
    return parse_plain(text, article_id=article_id, source=source, category=category, markdown=markdown)
