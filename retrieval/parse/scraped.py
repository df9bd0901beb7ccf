"""The scraped-page layout of the user's corpus.

::

    <title>
    <blank>
    <title again>
    <date line>                 e.g. "Tue Jun 21, 2016 12:02:16"
    <blank>
    <paragraphs separated by blank lines>
    <three blank lines>
    string(2748) "[{"id":"1829953",...,"pic":"/2016/06/19/....jpg","title":"..."} ,{...} ]"

The last line is a PHP ``var_dump`` of a JSON list of related articles. Its byte count is not
trusted; a dump cut off part-way still yields every item whose id and title survive. Nothing of
the dump ever reaches the body.
"""

from __future__ import annotations

import json
import re

from retrieval.models import Article, RelatedItem
from retrieval.parse.common import first_lines, parse_plain, related_item, url_of_line
from retrieval.parse.dates import parse_date

__all__ = ["find_dump", "looks_scraped", "parse_related", "parse_scraped", "split_dump"]

_DUMP_AT = re.compile(r"string\(\s*\d+\s*(?:\)\s*(?:\"|\Z)|\Z)")
_DUMP_ANYWHERE = re.compile(r"string\(\s*\d+\s*\)\s*\"\s*\[")
_TRUNCATED_DUMP = re.compile(r"\n[^\S\n]*\n[^\S\n]*\n\s*(?:s|st|str|stri|strin|string|string\(\d*)\s*\Z")
_BARE_LIST = re.compile(r"\n[^\S\n]*\[\s*\{\s*\"(?:id|title)\"\s*:[^\n]*\Z")


def find_dump(text: str) -> int | None:
    """Offset where the trailing related-items dump starts, or None when there is none."""
    pos = text.rfind("string(")
    while pos != -1:
        line_start = text.rfind("\n", 0, pos) + 1
        if not text[line_start:pos].strip() and _DUMP_AT.match(text, pos):
            return line_start
        pos = text.rfind("string(", 0, pos)
    matches = list(_DUMP_ANYWHERE.finditer(text))
    if matches:
        return matches[-1].start()
    m = _BARE_LIST.search(text)
    if m:
        return m.start() + 1
    m = _TRUNCATED_DUMP.search(text)
    if m:
        return m.start() + 1
    return None


def split_dump(text: str) -> tuple[str, str | None]:
    """(text before the dump, the dump) or (text, None)."""
    pos = find_dump(text)
    if pos is None:
        return text, None
    return text[:pos], text[pos:]


_FIELD = re.compile(r"\"(id|title|pic|date|published)\"\s*:\s*(?:\"((?:[^\"\\]|\\.)*)\"|(-?\d+))")


def _recover(fragment: str) -> RelatedItem | None:
    """Fields of a broken or cut-off entry, read one by one; only complete values count."""
    fields: dict[str, object] = {}
    for m in _FIELD.finditer(fragment):
        name = m.group(1)
        if name in fields:
            break  # the next entry starts here
        if m.group(3) is not None:
            fields[name] = m.group(3)
            continue
        raw = m.group(2)
        try:
            fields[name] = json.loads('"' + raw + '"')
        except ValueError:
            fields[name] = raw
    return related_item(fields)


def parse_related(dump: str) -> list[RelatedItem]:
    """Related items of a ``string(N) "[...]"`` dump; tolerant of a wrong N and of truncation."""
    start = dump.find("[")
    if start == -1:
        return []
    payload = dump[start:]
    end = payload.rfind("]")
    if end != -1:
        try:
            items = json.loads(payload[: end + 1])
        except (ValueError, RecursionError):
            items = None
        if isinstance(items, list):
            return [item for obj in items if isinstance(obj, dict) and (item := related_item(obj))]
    out: list[RelatedItem] = []
    decoder = json.JSONDecoder()
    pos = 1
    n = len(payload)
    while pos < n:
        while pos < n and payload[pos] in " \t\r\n,":
            pos += 1
        if pos >= n or payload[pos] != "{":
            nxt = payload.find("{", pos)
            if nxt == -1:
                break
            pos = nxt
        try:
            obj, pos = decoder.raw_decode(payload, pos)
        except (ValueError, RecursionError):
            nxt = payload.find('{"', pos + 1)
            fragment = payload[pos:] if nxt == -1 else payload[pos:nxt]
            item = _recover(fragment)
            if item is not None:
                out.append(item)
            if nxt == -1:
                break
            pos = nxt
            continue
        if isinstance(obj, dict) and (item := related_item(obj)):
            out.append(item)
    return out


def looks_scraped(text: str) -> bool:
    """True for the scraped-page layout: a related-items dump, a repeated title, or a date/URL line
    right after the title."""
    if find_dump(text) is not None:
        return True
    head = first_lines(text, 4)
    if len(head) < 2:
        return False
    if head[1].casefold() == head[0].casefold():
        return True
    return any(parse_date(line) or url_of_line(line) for line in head[1:3])


def parse_scraped(text: str, *, article_id: str, source: str, category: str | None = None) -> Article:
    """One article in the scraped-page layout (any of its parts may be missing)."""
    head, dump = split_dump(text)
    related = parse_related(dump) if dump else []
    return parse_plain(
        head,
        article_id=article_id,
        source=source,
        category=category,
        scan_header=True,
        related=related,
    )
