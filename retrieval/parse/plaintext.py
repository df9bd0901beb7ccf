"""Plain-text articles: a title line, a blank line, then paragraphs separated by blank lines.

This is the BBC layout. Files in the scraped-page layout (title repeated, a date line, a trailing
PHP ``string(N) "[...]"`` dump of related items) are recognised here and handed to
:mod:`retrieval.parse.scraped`. The helpers for cleaning lines and splitting paragraphs are shared
by the other parsers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from retrieval.models import Article, RelatedItem
from retrieval.parse.dates import parse_date

__all__ = [
    "ParseError",
    "clean_inline",
    "derive_title",
    "looks_scraped",
    "parse_plain",
    "parse_text",
    "split_paragraphs",
    "url_of_line",
]


class ParseError(ValueError):
    """A file or record cannot become an article; the message is the reason shown to people."""


_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _unescape_entity(m: re.Match[str]) -> str:
    return html.unescape(m.group(0))


def clean_inline(text: str) -> str:
    """Unescape HTML entities (``&amp;``, ``&#8217;``) and collapse all whitespace to single spaces."""
    if "&" in text:
        text = _ENTITY.sub(_unescape_entity, text)
    return " ".join(text.split())


_BLANK_LINES = re.compile(r"\n[^\S\n]*\n\s*")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of a body: blocks separated by blank lines, each block's lines joined by a space.

    A body with no blank lines but several lines is read as one paragraph per line, unless its
    lines look hard-wrapped (many lines of similar width), in which case they are joined.
    """
    blocks = _BLANK_LINES.split(text.strip())
    if len(blocks) == 1 and "\n" in blocks[0]:
        lines = [line for line in blocks[0].split("\n") if line.strip()]
        if not _looks_hard_wrapped(lines):
            blocks = lines
    paragraphs = []
    for block in blocks:
        cleaned = clean_inline(block)  # also turns single line breaks into spaces
        if cleaned:
            paragraphs.append(cleaned)
    return paragraphs


_SENTENCE_ENDS = (".", "!", "?", '"', "\u201d", "'", "\u2019", ":", ")")


def _looks_hard_wrapped(lines: Sequence[str]) -> bool:
    if len(lines) < 3:
        return False
    widths = [len(line.rstrip()) for line in lines]
    widest = max(widths)
    if not 40 <= widest <= 100:
        return False
    inner = lines[:-1]
    full = sum(1 for w in widths[:-1] if w >= 0.6 * widest)
    ended = sum(1 for line in inner if line.rstrip().endswith(_SENTENCE_ENDS))
    return full >= 0.7 * len(inner) and ended < 0.5 * len(inner)


def derive_title(body: str, limit: int = 100) -> str:
    """A title for text that has none: its first sentence, shortened at a word boundary."""
    first = body.split("\n\n", 1)[0]
    m = re.search(r"[.!?](?=\s|$)", first)
    if m and m.end() <= limit:
        return first[: m.end()]
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0] or first[:limit]
    return cut.rstrip(",;:-") + "\u2026"


_URL_LINE = re.compile(r"(?:(?:url|link|source|permalink|original\s+url)\s*:\s*)?(https?://\S+)", re.I)


def url_of_line(line: str) -> str | None:
    """``"URL: https://example.com/a"`` (or a bare URL on its own line) -> the URL."""
    m = _URL_LINE.fullmatch(line.strip())
    return m.group(1) if m else None


_HEADER_LINES = 6  # non-blank lines after the title that may hold the repeated title, date or URL
_MAX_TITLE_CHARS = 300  # a longer first line is a paragraph, not a title


def _strip_markdown_heading(line: str) -> str:
    return line.lstrip("#").strip() if line.startswith("#") else line


def parse_plain(
    text: str,
    *,
    article_id: str,
    source: str,
    category: str | None = None,
    scan_header: bool = False,
    related: Sequence[RelatedItem] = (),
    markdown: bool = False,
    published: str | None = None,
    url: str | None = None,
) -> Article:
    """Title line, then body. With ``scan_header``, the lines right after the title may repeat the
    title or give the date or the URL; those become fields and are kept out of the body."""
    lines = text.split("\n")
    n = len(lines)
    i = 0
    while i < n and not lines[i].strip():
        i += 1
    if i == n:
        raise ParseError("no text")
    first = lines[i]
    if markdown:
        first = _strip_markdown_heading(first.strip())
    title = clean_inline(first)
    if len(title) > _MAX_TITLE_CHARS:
        body_start = i  # no title line: the text starts with a paragraph
        title = ""
    else:
        body_start = i + 1
        if scan_header:
            body_start, published, url = _scan_header(lines, body_start, title, published, url)
    paragraphs = split_paragraphs("\n".join(lines[body_start:]))
    if not paragraphs:
        raise ParseError("no body text (title only)")
    body = "\n\n".join(paragraphs)
    if not title:
        title = derive_title(body)
    return Article(
        id=article_id,
        title=title,
        body=body,
        source=source,
        published=published,
        url=url,
        category=category,
        related=list(related),
    )


def _scan_header(
    lines: list[str], start: int, title: str, published: str | None, url: str | None
) -> tuple[int, str | None, str | None]:
    folded_title = title.casefold()
    repeated = False
    end = start
    seen = 0
    j = start
    while j < len(lines) and seen < _HEADER_LINES:
        raw = lines[j]
        if not raw.strip():
            j += 1
            continue
        seen += 1
        line = clean_inline(raw)
        if not repeated and line.casefold() == folded_title:
            repeated = True
        elif url is None and (found_url := url_of_line(line)):
            url = found_url
        elif published is None and (found_date := parse_date(line)):
            published = found_date
        else:
            break
        j += 1
        end = j
    return end, published, url


def _first_lines(text: str, count: int) -> list[str]:
    out: list[str] = []
    pos = 0
    while len(out) < count and pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos:] if nl == -1 else text[pos:nl]
        pos = len(text) if nl == -1 else nl + 1
        if line.strip():
            out.append(clean_inline(line))
    return out


def looks_scraped(text: str) -> bool:
    """True for the scraped-page layout: a related-items dump, a repeated title, or a date/URL line
    right after the title."""
    from retrieval.parse.scraped import find_dump

    if find_dump(text) is not None:
        return True
    head = _first_lines(text, 4)
    if len(head) < 2:
        return False
    if head[1].casefold() == head[0].casefold():
        return True
    return any(parse_date(line) or url_of_line(line) for line in head[1:3])


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


def parse_text(
    text: str, *, article_id: str, source: str, category: str | None = None, markdown: bool = False
) -> Article:
    """One article from decoded text in the plain or the scraped layout (whichever it is)."""
    fields, rest = _front_matter(text) if text.startswith("---") else ({}, text)
    if fields:
        title = clean_inline(fields.get("title", ""))
        if title:
            rest = title + "\n\n" + rest
        published = parse_date(fields.get("date", "") or fields.get("published", ""))
        url = url_of_line(fields.get("url", "") or fields.get("link", ""))
        return parse_plain(
            rest,
            article_id=article_id,
            source=source,
            category=fields.get("category") or category,
            scan_header=True,
            markdown=markdown,
            published=published,
            url=url,
        )
    if looks_scraped(text):
        from retrieval.parse.scraped import parse_scraped

        return parse_scraped(text, article_id=article_id, source=source, category=category)
    return parse_plain(text, article_id=article_id, source=source, category=category, markdown=markdown)
