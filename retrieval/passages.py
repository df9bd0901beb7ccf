"""Cut articles into passages (the unit that is ranked and quoted) and text into sentences.

A passage is a paragraph; a paragraph longer than ``max_chars`` is cut between sentences into
pieces near ``target_chars``; a paragraph shorter than ``min_chars`` (a one-line quote, a
dateline) joins the next one, or the previous one at the end of the article.
"""

from __future__ import annotations

import math
import re

from retrieval.models import Article, Passage

__all__ = ["split_passages", "split_sentences"]

# Words that end with a period without ending the sentence (compared in lower case).
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "messrs",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "ft",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "cmdr",
        "adm",
        "gov",
        "sen",
        "rep",
        "rev",
        "hon",
        "pres",
        "supt",
        "insp",
        "det",
        "maj",
        "brig",
        "cpl",
        "pte",
        "atty",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "e.g",
        "i.e",
        "cf",
        "vs",
        "approx",
        "dept",
        "est",
        "univ",
        "assn",
        "bros",
    ]
)
# Abbreviations that stay attached only when a number follows ("No. 10", "pp. 4-5").
_NUMBER_ABBREVIATIONS = frozenset(
    ["no", "nos", "art", "fig", "figs", "vol", "vols", "p", "pp", "ch", "sec", "para", "op"]
)

_CANDIDATE = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]\u00bb]*(?=\s|$)")
_OPENERS = "\"'\u201c\u2018([\u00ab\u2014\u2013-"
_INITIALISM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")


def _ends_sentence(text: str, mark_start: int, mark_end: int) -> bool:
    """Is the punctuation at text[mark_start:mark_end] (followed by whitespace or the end) a
    sentence end?"""
    n = len(text)
    nxt = mark_end
    while nxt < n and text[nxt].isspace():
        nxt += 1
    if nxt >= n:
        return True
    following = text[nxt]
    while following in _OPENERS and nxt + 1 < n:
        nxt += 1
        following = text[nxt]
    if not (following.isupper() or following.isdigit() or following in _OPENERS):
        return False  # "e.g. the", "3 p.m. on Monday"
    if text[mark_start] != "." or text[mark_start:mark_end].startswith(".."):
        return True  # "!", "?", "..."
    word_start = mark_start
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:mark_start].lstrip(_OPENERS)
    if not word:
        return True
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. K. Rowling"
    lowered = word.lower()
    if lowered in _ABBREVIATIONS:
        return False
    if lowered in _NUMBER_ABBREVIATIONS and following.isdigit():
        return False
    return not _INITIALISM.fullmatch(word)  # "U.S.", "a.m."


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text``, whitespace excluded.

    A sentence ends at ``.``, ``!``, ``?`` or an ellipsis (plus any closing quotes or brackets)
    followed by whitespace and a capital, a digit or an opening quote. Abbreviations ("Mr.",
    "Jan.", "U.S."), initials and decimals ("4.75") do not end sentences.
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    start = 0
    while start < n and text[start].isspace():
        start += 1
    for m in _CANDIDATE.finditer(text):
        end = m.end()
        if end <= start or not _ends_sentence(text, m.start(), end):
            continue
        spans.append((start, end))
        start = end
        while start < n and text[start].isspace():
            start += 1
    if start < n:
        end = n
        while end > start and text[end - 1].isspace():
            end -= 1
        spans.append((start, end))
    return spans


def _cut_long_span(text: str, start: int, end: int, target: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence at spaces (after a comma or semicolon when one is near)."""
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        count = math.ceil((end - start) / target)
        goal = (end - start) / count
        ideal = start + int(goal)
        limit = start + max_chars
        low = start + int(goal * 0.5)
        window_end = min(limit, ideal + int(goal * 0.25))
        cut = -1
        for sep in ("; ", ", "):
            pos = text.rfind(sep, low, window_end)
            if pos != -1:
                cut = pos + 1
                break
        if cut == -1:
            cut = text.rfind(" ", low, window_end + 1)
        if cut == -1:
            cut = text.rfind(" ", start + 1, limit + 1)
        if cut == -1 or cut <= start:
            cut = limit
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        pieces.append((start, end))
    return pieces


def _cut_paragraph(text: str, target: int, max_chars: int, min_chars: int) -> list[str]:
    """A paragraph over ``max_chars`` -> pieces near ``target`` chars, cut between sentences."""
    spans: list[tuple[int, int]] = []
    for start, end in split_sentences(text):
        if end - start > max_chars:
            spans.extend(_cut_long_span(text, start, end, target, max_chars))
        else:
            spans.append((start, end))
    count = max(1, math.ceil(len(text) / target))
    goal = len(text) / count
    pieces: list[tuple[int, int]] = []
    piece_start = piece_end = -1
    for start, end in spans:
        if piece_start == -1:
            piece_start, piece_end = start, end
            continue
        grown = end - piece_start
        current = piece_end - piece_start
        if grown > max_chars or current + (end - start) / 2 > goal:
            pieces.append((piece_start, piece_end))
            piece_start = start
        piece_end = end
    if piece_start != -1:
        pieces.append((piece_start, piece_end))
    if len(pieces) > 1:
        last_start, last_end = pieces[-1]
        prev_start, _ = pieces[-2]
        if last_end - last_start < min_chars and last_end - prev_start <= max_chars:
            pieces[-2:] = [(prev_start, last_end)]
    return [text[s:e] for s, e in pieces]


def _merge_tiny(units: list[str], min_chars: int, max_chars: int) -> list[str]:
    out: list[str] = []
    pending: str | None = None
    for unit in units:
        if pending is not None:
            if len(pending) + 1 + len(unit) <= max_chars:
                unit = pending + "\n" + unit
            elif out and len(out[-1]) + 1 + len(pending) <= max_chars:
                out[-1] = out[-1] + "\n" + pending
            else:
                out.append(pending)
            pending = None
        if len(unit) < min_chars:
            pending = unit
        else:
            out.append(unit)
    if pending is not None:
        if out and len(out[-1]) + 1 + len(pending) <= max_chars:
            out[-1] = out[-1] + "\n" + pending
        else:
            out.append(pending)
    return out


def split_passages(
    article: Article, *, target_chars: int = 600, max_chars: int = 1000, min_chars: int = 120
) -> list[Passage]:
    """The article's passages, numbered 0..n-1. No passage is longer than ``max_chars``."""
    units: list[str] = []
    for paragraph in article.body.split("\n\n"):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= max_chars:
            units.append(paragraph)
        else:
            units.extend(_cut_paragraph(paragraph, target_chars, max_chars, min_chars))
    texts = _merge_tiny(units, min_chars, max_chars)
    return [Passage(article_id=article.id, ordinal=i, text=t) for i, t in enumerate(texts)]
