"""Articles stored as JSON records: a JSON object, a list of objects, a wrapper such as
``{"articles": [...]}``, or JSON Lines (one object per line).

Field names vary between exporters; the usual ones are recognised (``title``/``headline``,
``body``/``text``/``content``, ``url``/``link``, ``published``/``date``/``pubDate``/epoch numbers,
``id``/``_id``/``guid``, ``category``/``section``). Each record is judged on its own: a bad record
is refused as ``path#N`` and the others still become articles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

from retrieval.models import Article, ParseResult, Refusal, RelatedItem
from retrieval.parse.common import (
    MalformedJSON,
    ParseError,
    clean_field,
    clean_inline,
    derive_title,
    load_json,
    related_item,
    split_paragraphs,
)
from retrieval.parse.dates import parse_date_value

__all__ = [
    "MAX_RECORDS_PER_FILE",
    "article_from_record",
    "is_json",
    "parse_json",
    "parse_jsonl",
    "strip_html",
]

# The article's size, measured on its encoded text; given by the caller.
SizeCheck = Callable[[Article], str | None]

# One file gives at most this many articles: a small compressed file of tiny records must not
# become millions of articles. Records past it are refused with one reason.
MAX_RECORDS_PER_FILE = 100_000
# Values a JSON document (or one JSON Lines record) may hold, counted before it is decoded: each costs
# 50-200 bytes once decoded, so a few MB of ``["ab","ab",...]`` could otherwise take gigabytes.
MAX_JSON_VALUES = 1_000_000

_TITLE_KEYS = ("title", "headline", "name", "heading", "subject")
_BODY_KEYS = (
    "body", "text", "content", "article", "articlebody", "article_body", "full_text", "fulltext",
    "story", "paragraphs", "context", "description", "short_description", "summary", "abstract", "lead",
)  # fmt: skip
_URL_KEYS = ("url", "link", "permalink", "href", "web_url", "canonical_url", "source_url", "uri")
_DATE_KEYS = (
    "published", "date", "published_at", "publishedat", "pubdate", "datetime", "timestamp",
    "date_published", "datepublished", "publish_date", "publication_date", "created_at", "created",
    "time", "updated_at",
)  # fmt: skip
_ID_KEYS = ("id", "_id", "guid", "uuid", "article_id", "doc_id")
_CATEGORY_KEYS = ("category", "section", "topic", "categories", "topics", "tags")
_WRAPPER_KEYS = (
    "articles", "items", "data", "results", "records", "entries", "posts", "news", "docs",
    "documents", "stories", "hits", "rows",
)  # fmt: skip

_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_HTML_DROP = re.compile(r"<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_HTML_BLOCK = re.compile(
    r"</?(?:p|div|br|li|ul|ol|h[1-6]|blockquote|section|article|header|footer|figure|figcaption|"
    r"table|tr|pre|hr)\b[^>]*>",
    re.I,
)
_LOOKS_HTML = re.compile(
    r"<(?:p|br|div|span|a|em|strong|b|i|li|h[1-6]|blockquote|figure|img)\b[^>]*>|</[a-z]", re.I
)


def strip_html(text: str) -> str:
    """HTML markup -> text: block elements become paragraph breaks, other tags disappear.
    Entities are left for :func:`clean_inline`. Text without tags is returned unchanged."""
    if "<" not in text or not _LOOKS_HTML.search(text):
        return text
    text = _HTML_DROP.sub(" ", text)
    text = _HTML_BLOCK.sub("\n\n", text)
    return _HTML_TAG.sub("", text)


def _lower_keys(record: dict[str, object]) -> dict[str, object]:
    return {k.lower() if isinstance(k, str) else k: v for k, v in record.items()}


def _first(fields: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "" and value != []:
            return value
    return None


def _text_of(value: object, depth: int = 0) -> str:
    """A field's text: a string, a list of paragraphs, or an object holding the text
    (``{"rendered": "<p>..."}``, ``{"context": ...}``)."""
    if depth > 4:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [_text_of(v, depth + 1) for v in value]
        return "\n\n".join(p for p in parts if p.strip())
    if isinstance(value, dict):
        inner = _lower_keys(value)
        for key in ("rendered", "text", "value", "content", "body", "context", "#text"):
            if key in inner:
                return _text_of(inner[key], depth + 1)
    return ""


def _record_id(fields: dict[str, object]) -> str | None:
    value = _first(fields, _ID_KEYS)
    if isinstance(value, dict):  # {"$oid": "..."} in MongoDB exports
        value = value.get("$oid") or value.get("value")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str | int | float):
        text = clean_field(str(value))
        return text or None
    return None


def _category(fields: dict[str, object]) -> str | None:
    value = _first(fields, _CATEGORY_KEYS)
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str) and v.strip()), None)
    if isinstance(value, dict):
        value = _text_of(value) or value.get("name")
    if isinstance(value, str):
        return clean_inline(value) or None
    return None


def _url(fields: dict[str, object]) -> str | None:
    value = _first(fields, _URL_KEYS)
    if isinstance(value, dict):
        value = value.get("href") or value.get("url")
    if isinstance(value, str):
        return clean_field(value) or None
    return None


def _related(fields: dict[str, object]) -> list[RelatedItem]:
    value = fields.get("related")
    if not isinstance(value, list):
        return []
    return [item for v in value if isinstance(v, dict) and (item := related_item(v))]


def article_from_record(record: object, *, fallback_id: str, source: str) -> Article:
    """One JSON record -> Article; raises :class:`ParseError` with the reason when it cannot."""
    if not isinstance(record, dict):
        kind = {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
            type(record), "a number"
        )
        raise ParseError(f"record is {kind}, not an object")
    fields = _lower_keys(record)
    paragraphs = split_paragraphs(strip_html(_text_of(_first(fields, _BODY_KEYS))))
    title = clean_inline(strip_html(_text_of(_first(fields, _TITLE_KEYS))))
    if not paragraphs and not title:
        raise ParseError("no title or body text")
    # A headline-only record (a wire brief) is an article whose one passage is its headline.
    body = "\n\n".join(paragraphs) if paragraphs else title
    published = None
    for key in _DATE_KEYS:
        if key in fields:
            published = parse_date_value(fields[key])
            if published:
                break
    return Article(
        id=_record_id(fields) or fallback_id,
        title=title or derive_title(body),
        body=body,
        source=source,
        published=published,
        url=_url(fields),
        category=_category(fields),
        related=_related(fields),
    )


def _records_of(document: object) -> list[object] | None:
    """The records a JSON document holds, or None when it holds no recognisable list."""
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        return None
    fields = _lower_keys(document)
    if _first(fields, _BODY_KEYS) is not None and not _is_record_list(_first(fields, _BODY_KEYS)):
        return [document]
    for key in _WRAPPER_KEYS:
        value = fields.get(key)
        if _is_record_list(value):
            return value  # type: ignore[return-value]  # _is_record_list checked: a list of dicts
        if isinstance(value, dict):
            inner = _records_of(value)
            if inner is not None and not (len(inner) == 1 and inner[0] is value):
                return inner
    lists = [v for v in fields.values() if _is_record_list(v)]
    if lists:
        return max(lists, key=len)  # type: ignore[arg-type, return-value]  # each a list of dicts, as above
    return [document]


def _is_record_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value[:20])


def _add(
    result: ParseResult,
    record: object,
    *,
    n: int,
    stem: str,
    relpath: str,
    check_size: SizeCheck,
) -> None:
    _append(
        result,
        record,
        where=f"{relpath}#{n}",
        fallback_id=f"{stem}/{n}",
        relpath=relpath,
        check_size=check_size,
    )


def _append(
    result: ParseResult, record: object, *, where: str, fallback_id: str, relpath: str, check_size: SizeCheck
) -> None:
    """The record as an article, or a refusal naming ``where``."""
    try:
        article = article_from_record(record, fallback_id=fallback_id, source=relpath)
    except ParseError as exc:
        result.refusals.append(Refusal(where, str(exc)))
        return
    too_big = check_size(article)
    if too_big:
        result.refusals.append(Refusal(where, too_big))
        return
    result.articles.append(article)


def _values(text: str) -> int:
    """An upper bound on the values a JSON text holds past the first (objects, lists, and the items
    after each comma), counted without decoding it."""
    return text.count("{") + text.count("[") + text.count(",")


def _too_many_values(where: str) -> Refusal:
    return Refusal(where, f"JSON holds over {MAX_JSON_VALUES:,} values (split the file)")


def _holds_several_values(text: str) -> bool:
    """True when ``text`` starts with one whole JSON value and more follows (JSON Lines under a .json name)."""
    start = len(text) - len(text.lstrip())
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except (ValueError, RecursionError):
        return False
    return bool(text[end:].strip())


def is_json(text: str) -> bool:
    """True when ``text`` is one JSON document, or JSON Lines whose every line is one (never decoding
    more values than a JSON file may hold)."""
    if _values(text) > MAX_JSON_VALUES:
        return False
    try:
        load_json(text)
        return True
    except MalformedJSON:
        pass
    if not _holds_several_values(text):
        return False
    for _, line in _lines(text):
        if line.strip():
            try:
                load_json(line)
            except MalformedJSON:
                return False
    return True


def _too_many_records(relpath: str, limit: int) -> Refusal:
    return Refusal(
        relpath, f"more than {limit:,} records in one file; the rest were not read (split the file)"
    )


def parse_json(
    text: str, *, relpath: str, stem: str, check_size: SizeCheck, max_records: int = MAX_RECORDS_PER_FILE
) -> ParseResult:
    """A ``.json`` file: one article, a list of them, or a wrapper object holding a list.
    A file that turns out to be JSON Lines is read as such."""
    result = ParseResult()
    if _values(text) > MAX_JSON_VALUES:
        result.refusals.append(_too_many_values(relpath))
        return result
    try:
        document = load_json(text)
    except MalformedJSON as exc:
        if text.lstrip().startswith("{") and _holds_several_values(text):
            lines_result = parse_jsonl(text, relpath=relpath, stem=stem, check_size=check_size)
            if lines_result.articles:
                return lines_result
        result.refusals.append(Refusal(relpath, str(exc)))
        return result
    records = _records_of(document)
    if not records:
        what = "an empty list" if document == [] else "no article records"
        result.refusals.append(Refusal(relpath, f"JSON holds {what}"))
        return result
    single = len(records) == 1 and records[0] is document
    for n, record in enumerate(records, start=1):
        if n > max_records:
            result.refusals.append(_too_many_records(relpath, max_records))
            break
        if single:
            _add_single(result, record, stem=stem, relpath=relpath, check_size=check_size)
        else:
            _add(result, record, n=n, stem=stem, relpath=relpath, check_size=check_size)
    return result


def _add_single(
    result: ParseResult, record: object, *, stem: str, relpath: str, check_size: SizeCheck
) -> None:
    """A file holding one article object: refusals name the file, the fallback id is the file's."""
    _append(result, record, where=relpath, fallback_id=stem, relpath=relpath, check_size=check_size)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    pos = 0
    n = 0
    size = len(text)
    while pos < size:
        nl = text.find("\n", pos)
        end = size if nl == -1 else nl
        n += 1
        yield n, text[pos:end]
        pos = end + 1


def parse_jsonl(
    text: str,
    *,
    relpath: str,
    stem: str,
    check_size: SizeCheck,
    max_line_chars: int | None = None,
    max_records: int = MAX_RECORDS_PER_FILE,
) -> ParseResult:
    """JSON Lines: one record per line, numbered by line (``path#N``; fallback id ``stem/N``).
    A bad line is refused on its own; blank lines are skipped."""
    if text.lstrip().startswith("[") and _values(text) <= MAX_JSON_VALUES:
        # a JSON array saved under a .jsonl name
        try:
            load_json(text)
        except MalformedJSON:
            pass
        else:
            return parse_json(
                text, relpath=relpath, stem=stem, check_size=check_size, max_records=max_records
            )
    result = ParseResult()
    records = 0
    for n, line in _lines(text):
        if not line.strip():
            continue
        records += 1
        if records > max_records:
            result.refusals.append(_too_many_records(relpath, max_records))
            break
        where = f"{relpath}#{n}"
        if max_line_chars is not None and len(line) > max_line_chars:
            result.refusals.append(
                Refusal(where, f"record is {len(line):,} characters long, too large to be one article")
            )
            continue
        if _values(line) > MAX_JSON_VALUES:
            result.refusals.append(_too_many_values(where))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            result.refusals.append(Refusal(where, f"malformed JSON: {exc.msg} at column {exc.colno}"))
            continue
        except (ValueError, RecursionError) as exc:
            reason = "JSON nested too deeply" if isinstance(exc, RecursionError) else f"malformed JSON: {exc}"
            result.refusals.append(Refusal(where, reason))
            continue
        _add(result, record, n=n, stem=stem, relpath=relpath, check_size=check_size)
    if not result.articles and not result.refusals:
        result.refusals.append(Refusal(relpath, "no records"))
    return result
