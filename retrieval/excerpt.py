"""Pick the few sentences of a passage that answer a question, and mark the matched words.

The excerpt is 1-3 consecutive sentences chosen for covering the question's rare terms (weighted
by idf when the index supplies it). Questions asking for a quantity or a date ("how many", "how
much", "when", "what year") favour sentences with numbers or dates; "who" questions favour
sentences naming someone the question does not already name. Long excerpts are cut at word
boundaries around the matched words, with "…" where text was left out. Matched words come back
as character spans into the excerpt text so a renderer can bold them without re-parsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from retrieval.analyze import Analyzer

try:
    from retrieval.passages import split_sentences as _split_sentences
except ImportError:  # pragma: no cover - the splitter ships with the package
    _split_sentences = None

__all__ = ["Excerpt", "choose_excerpt"]

ELLIPSIS = "\u2026"
MAX_SENTENCES = 3

_NUMERIC_QUESTION = re.compile(
    r"\bhow (?:many|much|long|old|far|large|big|often|tall|high)\b|\bwhen\b|\bwhich (?:year|date|century|decade)\b"
    r"|\bwhat (?:year|date|day|month|time|century|decade|percentage|percent|proportion|number|amount|price)\b"
    r"|\bin what year\b",
    re.IGNORECASE,
)
_NAME_QUESTION = re.compile(r"\bwho(?:m|se)?\b|\bwhat (?:is|was) the name\b", re.IGNORECASE)
_HAS_NUMBER = re.compile(
    r"\d|\b(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred"
    r"|thousand|million|billion|trillion|dozen)\b",
    re.IGNORECASE,
)
_CAPITALIZED = re.compile(r"(?<=\s)[A-Z][\w'\u2019-]+")
_SENTENCE_FALLBACK = re.compile(r"[^.!?\u2026]+(?:[.!?\u2026]+[\"'\u201d\u2019)\]]*|$)")


@dataclass(frozen=True, slots=True)
class Excerpt:
    text: str  # 1-3 consecutive sentences, <= ~300 chars, with "…" where cut
    spans: list[tuple[int, int]]  # matched term spans in `text`, sorted, non-overlapping
    start: int  # offset of the excerpt in the passage text (before any ellipsis)


def _sentences(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    if _split_sentences is not None:
        try:
            spans = [(int(s), int(e)) for s, e in _split_sentences(text)]
        except Exception:  # a splitter failure must not cost the answer its excerpt
            spans = []
        spans = [(s, e) for s, e in spans if 0 <= s < e <= len(text)]
        spans.sort()
    if not spans:
        spans = [(m.start(), m.end()) for m in _SENTENCE_FALLBACK.finditer(text) if m.group().strip()]
    if not spans and text.strip():
        spans = [(0, len(text))]
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut(
    text: str, start: int, end: int, matches: list[tuple[int, int, float]], max_chars: int
) -> tuple[int, int]:
    """The best ``max_chars``-ish slice of ``text[start:end]`` around the weighted matches, at word
    boundaries (leaving room for the ellipses the caller adds)."""
    budget = max(max_chars - 2, 1)
    anchors = sorted({start} | {max(start, s - 40) for s, _, _ in matches})
    best = (start, -1.0)
    for a in anchors:
        b = min(end, a + budget)
        seen: set[tuple[int, int]] = set()
        got = 0.0
        for s, e, w in matches:
            if s >= a and e <= b and (s, e) not in seen:
                seen.add((s, e))
                got += w
        if got > best[1] + 1e-12:
            best = (a, got)
    a = best[0]
    b = min(end, a + budget)
    if a > start and not text[a - 1].isspace() and not text[a].isspace():
        nxt = a
        while nxt < b and not text[nxt].isspace():
            nxt += 1
        if nxt < b:
            a = nxt
    if b < end and not text[b].isspace() and not text[b - 1].isspace():
        prev = b
        while prev > a and not text[prev - 1].isspace():
            prev -= 1
        if prev > a:
            b = prev
    return _trim(text, a, b)


def choose_excerpt(
    passage_text: str,
    question: str,
    analyzer: Analyzer,
    *,
    idf: Callable[[str], float] | None = None,
    max_chars: int = 300,
) -> Excerpt:
    """The 1-3 consecutive sentences of ``passage_text`` that best answer ``question``."""
    text = passage_text if isinstance(passage_text, str) else str(passage_text)
    max_chars = max(int(max_chars), 1)
    if not text.strip():
        return Excerpt(text="", spans=[], start=0)
    q_terms = set(analyzer.terms(question or ""))
    weights: dict[str, float] = {}
    for term in q_terms:
        w = 1.0
        if idf is not None:
            try:
                w = float(idf(term))
            except Exception:
                w = 1.0
            if not w > 0:  # unknown, or nan
                w = 0.05
        weights[term] = w
    total_weight = sum(weights.values()) or 1.0
    spans = [(s, e, t) for s, e, t in analyzer.term_spans(text) if t in weights]
    matches = [(s, e, weights[t]) for s, e, t in spans]
    numeric = bool(_NUMERIC_QUESTION.search(question or ""))
    wants_name = bool(_NAME_QUESTION.search(question or ""))

    sentences = _sentences(text)
    # per-sentence facts
    sent_terms: list[set[str]] = []
    sent_bonus: list[float] = []
    mi = 0
    ordered = sorted(matches)
    term_at: dict[tuple[int, int], str] = {(s, e): t for s, e, t in spans}
    for s, e in sentences:
        found: set[str] = set()
        while mi < len(ordered) and ordered[mi][0] < s:
            mi += 1
        j = mi
        while j < len(ordered) and ordered[j][0] < e:
            found.add(term_at[(ordered[j][0], ordered[j][1])])
            j += 1
        sent_terms.append(found)
        bonus = 0.0
        chunk = text[s:e]
        if numeric and _HAS_NUMBER.search(chunk):
            bonus = 0.25
        elif wants_name:
            names = [m.group() for m in _CAPITALIZED.finditer(chunk)]
            if any(not (set(analyzer.terms(n)) & q_terms) for n in names):
                bonus = 0.25
        sent_bonus.append(bonus if found else bonus / 4)

    best: tuple[float, int, int] | None = None
    for i in range(len(sentences)):
        covered: set[str] = set()
        for n in range(MAX_SENTENCES):
            j = i + n
            if j >= len(sentences):
                break
            covered |= sent_terms[j]
            length = sentences[j][1] - sentences[i][0]
            if n and length > max_chars:
                break
            cov = sum(weights[t] for t in covered) / total_weight
            bonus = max(sent_bonus[i : j + 1])
            score = cov + bonus - 0.15 * n - 0.1 * min(length, 2 * max_chars) / max_chars
            if best is None or score > best[0] + 1e-9:
                best = (score, i, j)
    if best is None:
        start, end = _trim(text, 0, len(text))
    else:
        start, end = _trim(text, sentences[best[1]][0], sentences[best[2]][1])
    if end - start > max_chars:
        inside = [(s, e, w) for s, e, w in matches if s >= start and e <= end]
        cut_start, cut_end = _cut(text, start, end, inside, max_chars)
    else:
        cut_start, cut_end = start, end
    if cut_end <= cut_start:  # nothing sensible to show: take the head of the passage
        cut_start, cut_end = _trim(text, 0, min(len(text), max(max_chars - 1, 1)))
    lead = ELLIPSIS if cut_start > start else ""
    tail = ELLIPSIS if cut_end < end else ""
    body_limit = max_chars + 1 - len(lead) - len(tail)
    if cut_end - cut_start > body_limit:
        cut_end = cut_start + max(body_limit, 0)
        tail = ELLIPSIS
        if len(lead) + (cut_end - cut_start) + 1 > max_chars + 1:
            cut_end = max(cut_start, cut_end - 1)
    body = text[cut_start:cut_end]
    shift = len(lead) - cut_start
    spans = _merge([(s + shift, e + shift) for s, e, _ in matches if s >= cut_start and e <= cut_end])
    return Excerpt(text=f"{lead}{body}{tail}", spans=spans, start=cut_start)
