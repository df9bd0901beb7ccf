"""Helpers shared by every parser: the refusal exception, text cleaning, paragraphs, titles, the
title-then-body layout, related items and JSON decoding.

The format modules (:mod:`~retrieval.parse.plaintext`, :mod:`~retrieval.parse.scraped`,
:mod:`~retrieval.parse.records`) import from here and never from each other; choosing among them
happens in one place, :mod:`retrieval.parse`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from datetime import date

from retrieval.models import Article, RelatedItem
from retrieval.parse.dates import parse_date, parse_date_value

__all__ = [
    "MalformedJSON",
    "ParseError",
    "clean_field",
    "clean_inline",
    "derive_title",
    "first_lines",
    "load_json",
    "parse_plain",
    "related_item",
    "split_paragraphs",
    "url_of_line",
]


class ParseError(ValueError):
    """A file or record cannot become an article; the message is the reason shown to people."""


class MalformedJSON(ParseError):
    """The text is not JSON (or is nested too deeply to read)."""


# ---------------------------------------------------------------- cleaning

# Control characters (C0 but tab and newline, DEL, C1), invisible marks that split words, and lone
# surrogates. File text is cleaned when it is decoded; JSON escapes (``\u0000``, ``\u001b``,
# ``\ud800``) bring them back inside records, so every field is cleaned again here.
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
# In one-line fields (ids, URLs) tabs and newlines are unwanted too: they could forge a line of output.
_UNWANTED_IN_FIELD = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _replace_unwanted(m: re.Match[str]) -> str:
    ch = m.group(0)
    if "\ud800" <= ch <= "\udfff":
        return "\ufffd"  # a lone surrogate cannot be stored as UTF-8: it shows as a replacement mark
    if ch in "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
        return "\n"
    return ""


def strip_unwanted(text: str) -> str:
    """``text`` without control characters; lone surrogates become U+FFFD."""
    return _UNWANTED.sub(_replace_unwanted, text) if _UNWANTED.search(text) else text


def clean_field(text: str) -> str:
    """A one-line field (an id, a URL): control characters, tabs and newlines removed, lone
    surrogates replaced by U+FFFD, outer spaces stripped."""
    if _UNWANTED_IN_FIELD.search(text):
        text = _UNWANTED_IN_FIELD.sub(lambda m: "\ufffd" if "\ud800" <= m.group(0) <= "\udfff" else "", text)
    return text.strip()


_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _unescape_entity(m: re.Match[str]) -> str:
    return html.unescape(m.group(0))


def clean_inline(text: str) -> str:
    """Unescape HTML entities (``&amp;``, ``&#8217;``), drop control characters, and collapse all
    whitespace to single spaces."""
    if "&" in text:
        text = _ENTITY.sub(_unescape_entity, text)
    return " ".join(strip_unwanted(text).split())


_BLANK_LINES = re.compile(r"\n[^\S\n]*\n\s*")


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of a body: blocks separated by blank lines, each block's lines joined by a space.

    A body with no blank lines but several lines is read as one paragraph per line, unless its
    lines look hard-wrapped (many lines of similar width), in which case they are joined.
    """
    blocks = _BLANK_LINES.split(strip_unwanted(text).strip())
    if len(blocks) == 1 and "\n" in blocks[0]:
        lines = [line for line in blocks[0].split("\n") if line.strip()]
        if not _looks_hard_wrapped(lines):
            blocks = lines
    paragraphs = []
    for block in blocks:
        # Also turns single line breaks into spaces. The text is already free of control characters: a block
        # needs them stripped again only when an entity was unescaped.
        cleaned = clean_inline(block) if "&" in block else " ".join(block.split())
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


def first_lines(text: str, count: int) -> list[str]:
    """The first ``count`` non-blank lines of ``text``, cleaned."""
    out: list[str] = []
    pos = 0
    while len(out) < count and pos < len(text):
        nl = text.find("\n", pos)
        line = text[pos:] if nl == -1 else text[pos:nl]
        pos = len(text) if nl == -1 else nl + 1
        if line.strip():
            out.append(clean_inline(line))
    return out


# ---------------------------------------------------------------- the title-then-body layout

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


# ---------------------------------------------------------------- related items

_PIC_DATE = re.compile(r"/((?:19|20)\d\d)/(\d{1,2})/(\d{1,2})/")


def _date_from_pic(pic: object) -> str | None:
    if not isinstance(pic, str):
        return None
    m = _PIC_DATE.search(pic)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


def related_item(obj: dict[str, object]) -> RelatedItem | None:
    """A related-article entry (``id``, ``title``, ``pic`` ...) -> RelatedItem; None without an id or a title."""
    raw_id = obj.get("id")
    raw_title = obj.get("title")
    if raw_id is None or isinstance(raw_id, bool | dict | list) or not isinstance(raw_title, str):
        return None
    item_id = clean_field(str(raw_id))
    title = clean_inline(raw_title)
    if not item_id or not title:
        return None
    published = _date_from_pic(obj.get("pic"))
    if published is None:
        for key in ("date", "published", "pubDate", "published_at"):
            if key in obj:
                found = parse_date_value(obj[key])
                if found:
                    published = found[:10]
                    break
    return RelatedItem(id=item_id, title=title, published=published)


# ---------------------------------------------------------------- JSON


def load_json(text: str) -> object:
    """The JSON document in ``text``; raises :class:`MalformedJSON` with the reason."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedJSON(f"malformed JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from exc
    except RecursionError:
        raise MalformedJSON("JSON nested too deeply") from None
    except ValueError as exc:
        raise MalformedJSON(f"malformed JSON: {exc}") from None
