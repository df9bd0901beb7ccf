"""Turn corpus files into articles: ``parse_file(relpath, data) -> ParseResult``.

The format is chosen by extension and content: plain text (the BBC layout), the scraped-page
layout with its related-items dump, Markdown, JSON and JSON Lines; ``.gz`` files holding one of
these are read too. Every problem becomes a :class:`~retrieval.models.Refusal` with a short reason;
``parse_file`` itself never raises on bad input.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import zlib

from retrieval.models import Article, ParseResult, Refusal
from retrieval.parse.common import ParseError
from retrieval.parse.plaintext import parse_front_matter, parse_plain_text
from retrieval.parse.records import MAX_RECORDS_PER_FILE, is_json, parse_json, parse_jsonl
from retrieval.parse.scraped import looks_scraped, parse_scraped

__all__ = [
    "DEFAULT_MAX_ARTICLE_BYTES",
    "DEFAULT_MAX_FILE_BYTES",
    "MAX_RECORDS_PER_FILE",
    "SUPPORTED_EXTENSIONS",
    "article_id_for",
    "decode_text",
    "max_text_file_bytes",
    "parse_file",
    "parse_text",
]

TEXT_EXTENSIONS = (".txt", ".text", ".md", ".markdown")
JSON_EXTENSIONS = (".json",)
JSONL_EXTENSIONS = (".jsonl", ".ndjson")
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    TEXT_EXTENSIONS
    + JSON_EXTENSIONS
    + JSONL_EXTENSIONS
    + tuple(e + ".gz" for e in TEXT_EXTENSIONS + JSON_EXTENSIONS + JSONL_EXTENSIONS)
)
DEFAULT_MAX_ARTICLE_BYTES = 2_000_000
# The largest file read, on disk and once decompressed (NEWSDESK_MAX_FILE_BYTES).
DEFAULT_MAX_FILE_BYTES = 32_000_000


def _extension(relpath: str) -> str:
    """``business/312.TXT`` -> ``.txt``; ``a/b.jsonl.gz`` -> ``.jsonl.gz``; ``README`` -> ``""``."""
    name = relpath.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    if dot <= 0:
        return ""
    ext = name[dot:]
    if ext == ".gz":
        inner = name.rfind(".", 0, dot)
        if inner > 0:
            return name[inner:]
    return ext


def article_id_for(relpath: str) -> str:
    """The id of the article a one-article file holds: its path without the extension."""
    relpath = relpath.replace("\\", "/").lstrip("/")
    ext = _extension(relpath)
    if ext in SUPPORTED_EXTENSIONS:
        return relpath[: len(relpath) - len(ext)]
    name_start = relpath.rfind("/") + 1
    dot = relpath.rfind(".")
    return relpath[:dot] if dot > name_start else relpath


def _category_for(relpath: str) -> str | None:
    """A one-article file's category: the name of the folder holding it (``business/312.txt``),
    when that name is a word rather than a number or a date."""
    parts = relpath.split("/")
    if len(parts) < 2:
        return None
    folder = parts[-2].strip()
    return folder if any(c.isalpha() for c in folder) else None


# ---------------------------------------------------------------- bytes -> text

_SIGNATURES = (
    (b"%PDF-", "PDF"),
    (b"PK\x03\x04", "zip archive"),
    (b"\x1f\x8b", "gzip"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"\x7fELF", "executable"),
    (b"MZ\x90\x00", "executable"),
    (b"SQLite format 3\x00", "SQLite database"),
    (b"\xd0\xcf\x11\xe0", "Office document"),
    (b"7z\xbc\xaf", "7-Zip archive"),
    (b"\xfd7zXZ\x00", "xz"),
)
# Bytes that occur in text: printable ASCII, tab, newlines, form feed, escape, and all bytes >= 0x80.
_TEXT_BYTES = bytes([7, 8, 9, 10, 11, 12, 13, 27]) + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_SAMPLE = 65536


def _utf16_bom(data: bytes | bytearray) -> str | None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _binary_kind(data: bytes | bytearray) -> str | None:
    """Why these bytes are not text (a file type, or "binary"), or None when they are text."""
    if _utf16_bom(data):
        return None
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if b"\x00" in data:
        return "binary"
    sample = data[:_SAMPLE]
    odd = len(sample.translate(None, _TEXT_BYTES))
    if odd > 0.02 * len(sample) + 2:
        return "binary"
    return None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\u200b\ufeff\ufffe]")
_NEWLINES = re.compile(r"\r\n?|[\u2028\u2029\x85]")


def _decode(data: bytes | bytearray) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM stripped), else UTF-16 with a BOM, else Windows-1252."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    elif _utf16_bom(data):
        return data.decode("utf-16", errors="replace"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # cp1252 leaves five byte values undefined; those become U+FFFD instead of failing
        return data.decode("cp1252", errors="replace"), "cp1252"


def _normalize(text: str) -> str:
    if "\r" in text or "\u2028" in text or "\u2029" in text or "\x85" in text:
        text = _NEWLINES.sub("\n", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: "\n" if m.group(0) in "\x0b\x0c" else "", text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def decode_text(data: bytes | bytearray) -> str:
    """File bytes -> text: strip a UTF-8 BOM, decode UTF-8 (Windows-1252 when the file is not valid
    UTF-8), turn CRLF/CR into LF, drop stray control characters, NFC-normalize."""
    return _normalize(_decode(data)[0])


# ---------------------------------------------------------------- sizes


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1000:
        return f"{n / 1000:.1f} KB"
    return f"{n} bytes"


def _size_checker(max_article_bytes: int):
    def check(article: Article) -> str | None:
        if len(article.body) + len(article.title) <= max_article_bytes // 4:
            return None  # cannot be over the limit even at 4 bytes a character
        n = len(article.title.encode("utf-8")) + 2 + len(article.body.encode("utf-8"))
        if n > max_article_bytes:
            return f"article is {_size(n)}, over the {_size(max_article_bytes)} limit"
        return None

    return check


def max_text_file_bytes(max_article_bytes: int, max_file_bytes: int) -> int:
    """The largest one-article text file read: far beyond anything one article plus its related-items
    dump could be, and never over the file limit."""
    return min(8 * max_article_bytes + 1_000_000, max_file_bytes)


def gunzip(data: bytes | bytearray, limit: int) -> bytearray:
    """Every member of a gzip (or zlib) stream, as ``zcat`` reads it, decompressed a bounded piece at a
    time: past ``limit`` bytes of output it stops with a ParseError, never holding more than that.
    Zero bytes after the last member (tape padding) are ignored, as by ``gzip``."""
    out = bytearray()
    rest = data
    while rest:
        decomp = zlib.decompressobj(wbits=47)  # gzip or zlib header
        pending = rest
        while not decomp.eof:
            chunk = decomp.decompress(pending, limit + 1 - len(out))
            out += chunk
            if len(out) > limit:
                raise ParseError(f"compressed file expands to over {_size(limit)}")
            pending = decomp.unconsumed_tail
            if not chunk and not pending and not decomp.eof:
                raise ParseError("compressed file is cut off")
        rest = decomp.unused_data
        if not rest.strip(b"\x00"):
            break
        if not rest.startswith((b"\x1f\x8b", b"\x78")):
            raise ParseError("compressed file has data after its end that is not another gzip member")
    return out


# ---------------------------------------------------------------- entry point


def parse_file(
    relpath: str,
    data: bytes,
    *,
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ParseResult:
    """Parse one corpus file. ``relpath`` is relative to the corpus folder, with forward slashes.

    One-article files (text) give the id ``relpath`` minus extension; JSON records keep their own
    id, or get ``<relpath minus extension>/<n>``. Never raises on bad content: problems come back
    as refusals (``relpath`` or ``relpath#N`` for record N). Every text of every article is valid
    Unicode without control characters (lone surrogates from JSON escapes become U+FFFD).
    """
    relpath = relpath.replace("\\", "/").lstrip("/")
    result = ParseResult()
    try:
        _parse_into(result, relpath, data, max_article_bytes, max_file_bytes)
    except ParseError as exc:
        result.refusals.append(Refusal(relpath, str(exc)))
    except Exception as exc:  # a parser bug must not stop an ingest of thousands of files
        result.articles.clear()
        result.refusals.append(Refusal(relpath, f"internal parser error ({type(exc).__name__})"))
    return result


def _parse_into(
    result: ParseResult, relpath: str, data: bytes | bytearray, max_article_bytes: int, max_file_bytes: int
) -> None:
    ext = _extension(relpath)
    if ext not in SUPPORTED_EXTENSIONS:
        raise ParseError(f"unsupported file type '{ext}'" if ext else "no file extension")
    if len(data) > max_file_bytes:
        raise ParseError(f"file is {_size(len(data))}, over the {_size(max_file_bytes)} file limit")
    if ext.endswith(".gz"):
        if not data:
            raise ParseError("empty file")
        if not data.startswith(b"\x1f\x8b"):
            raise ParseError("not a gzip file")
        ext = ext[: -len(".gz")]
        limit = (
            max_text_file_bytes(max_article_bytes, max_file_bytes)
            if ext in TEXT_EXTENSIONS
            else max_file_bytes
        )
        try:
            data = gunzip(data, limit)
        except (zlib.error, EOFError) as exc:
            raise ParseError(f"corrupt gzip file ({exc})") from None
    if not data:
        raise ParseError("empty file")
    kind = _binary_kind(data)
    if kind is not None:
        raise ParseError("binary file, not text" if kind == "binary" else f"binary file ({kind}), not text")
    check_size = _size_checker(max_article_bytes)
    stem = article_id_for(relpath)

    if ext in TEXT_EXTENSIONS:
        if len(data) > max_text_file_bytes(max_article_bytes, max_file_bytes):
            raise ParseError(f"file is {_size(len(data))}, over the {_size(max_article_bytes)} article limit")
        text = decode_text(data)
        if not text.strip():
            raise ParseError("empty file (only whitespace)")
        first = text.lstrip()[:1]
        if first in "{[" and (records := _text_as_json(text, relpath, stem, check_size)) is not None:
            result.articles.extend(records.articles)
            result.refusals.extend(records.refusals)
            return
        article = parse_text(
            text,
            article_id=stem,
            source=relpath,
            category=_category_for(relpath),
            markdown=ext in (".md", ".markdown"),
        )
        too_big = check_size(article)
        if too_big:
            raise ParseError(too_big)
        result.articles.append(article)
        return

    text = decode_text(data)
    if not text.strip():
        raise ParseError("empty file (only whitespace)")
    if ext in JSON_EXTENSIONS:
        records = parse_json(text, relpath=relpath, stem=stem, check_size=check_size)
    else:
        records = parse_jsonl(
            text, relpath=relpath, stem=stem, check_size=check_size, max_line_chars=8 * max_article_bytes
        )
    result.articles.extend(records.articles)
    result.refusals.extend(records.refusals)


def parse_text(
    text: str, *, article_id: str, source: str, category: str | None = None, markdown: bool = False
) -> Article:
    """One article from decoded text: front matter, the scraped-page layout, or plain text."""
    if text.startswith("---") and (
        article := parse_front_matter(
            text, markdown=markdown, article_id=article_id, source=source, category=category
        )
    ):
        return article
    if looks_scraped(text):
        return parse_scraped(text, article_id=article_id, source=source, category=category)
    return parse_plain_text(text, markdown=markdown, article_id=article_id, source=source, category=category)


def _text_as_json(text: str, relpath: str, stem: str, check_size) -> ParseResult | None:
    """A text file that holds JSON records rather than prose (only when it parses cleanly)."""
    if not is_json(text):
        return None
    records = parse_json(text, relpath=relpath, stem=stem, check_size=check_size)
    return records if records.articles else None
