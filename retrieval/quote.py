"""Choose the quote that answers: a window of one to three sentences around the best passage.

The window may reach into the passage after the one the index found, or come from the article's first
passage (news paragraphs are one or two sentences, the figure, date or name a question asks for often
sits in the next one, and news puts its main facts first).
Each candidate window is scored by

* how much of the question's term weight it holds (idf-weighted; a follow-up's context counts less),
* whether it holds an answer of the type the question asks for (a number for "how many", a date for
  "when", a name for "who", a place for "where", ...) that is not one of the question's own words,
* a small cost for its length and for leaving the passage the index found,

and the best one, cut at word boundaries to ``max_chars`` if it is longer, becomes the quote with its
matched words marked as character spans.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from retrieval.analyze import Analyzer
from retrieval.bounded import make_room
from retrieval.layout import Sentences, passage_layout
from retrieval.models import PickledAsCall
from retrieval.question import AnswerType, Query
from retrieval.window_kernel import windows_kernel

__all__ = [
    "ELLIPSIS",
    "Excerpt",
    "Quote",
    "choose_quote",
    "join_quotes",
    "load_compiled",
    "quote_weights",
    "type_candidates",
]

ELLIPSIS = "\u2026"
MAX_SENTENCES = 3
FOCUS = 0.0  # weight of the best single sentence's coverage against the whole window's (0: the window's)
UNKNOWN_TERM_WEIGHT = 0.05

_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_NUMBER_WORDS = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen"
    r"|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand"
    r"|million|billion|trillion|dozen|half|third|quarter|double|twice|treble"
)
_DAYS = r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tomorrow|tonight"


def _trie(words: str) -> str:
    """``words`` ("one|two|...") as a pattern that branches on each letter in turn ("t(?:wo|hree|...)"):
    the same matches where the list is followed by a word boundary (only one of the words can then match at
    a place), and several times faster to search than trying every word at every word start."""
    tree: dict = {}
    for word in words.split("|"):
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict) -> str:
        branches = [re.escape(ch) + render(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return render(tree)


class _Shape:
    """A case-insensitive pattern of an answer's shape, with the characters its matches can start with.

    Matches are only tried where one of those characters stands, and ASCII text (nearly all news) is matched
    lowercased by the pattern compiled case-sensitive: the same matches, as an ASCII letter has no case forms
    but its two, several times faster than a case-insensitive search trying every alternative at every
    character."""

    __slots__ = ("pattern", "_lower", "_any_case")

    def __init__(self, pattern: str, first: str) -> None:
        self.pattern = pattern
        guarded = f"(?=[{first}])(?:{pattern})"
        self._lower = re.compile(guarded)
        self._any_case = re.compile(guarded, re.IGNORECASE)

    def spans(self, text: str) -> list[tuple[int, int]]:
        if text.isascii():
            return [m.span() for m in self._lower.finditer(text.lower())]
        return [m.span() for m in self._any_case.finditer(text)]


_QUANTITY = _Shape(
    r"[£$€¥]\s?\d[\d,.]*\s?(?:m|bn|k|million|billion|trillion)?\b|\d[\d,.]*\s?(?:%|per ?cent|percent)"
    r"|\b\d[\d,.]*(?:m|bn|k)?\b|\b(?:" + _trie(_NUMBER_WORDS) + r")\b",
    first=r"£$€¥\dbdefhmnoqst",  # a currency, a digit, or the first letter of a number word
)
_DATE = _Shape(
    r"\b(?:1[5-9]|20)\d\d(?:s)?\b|\b(?:" + _trie(_MONTHS) + r")\b\.?(?:\s+\d{1,2})?"
    r"|\b\d{1,2}(?:st|nd|rd|th)?\s+(?:" + _trie(_MONTHS) + r")\b"
    r"|\b(?:" + _trie(_DAYS) + r")\b"
    r"|\b(?:last|next|this|earlier this|later this)\s+(?:week|month|year|season|spring|summer|autumn|winter)\b"
    r"|\b(?:spring|summer|autumn|winter|christmas|easter)\b",
    first=r"\dacdefjlmnostwy",  # a digit, or the first letter of a month, a day, a season, last/next/...
)
# A capital first, then the rest of the word (written so that the search skips to capitals at once).
_NAME_WORD = r"(?:[A-Z](?:[\w'\u2019-]*[a-z][\w'\u2019-]*|[A-Z]+|\.))"
_NAME = re.compile(
    _NAME_WORD + r"(?:\s+(?:(?:de|van|von|der|den|di|da|du|del|le|la|al|bin|of|and)\s+)?" + _NAME_WORD + r")*"
)
_PLACE_CUE = re.compile(
    r"\b(?:in|at|from|to|near|outside|across|into|inside|around|towards|through)\s+(?:the\s+)?$"
)
_REASON = _Shape(
    r"\b(?:because|due to|as a result|after|following|amid|over|since|owing to|in order to|so that|"
    r"in protest|for (?:allegedly|failing|breaching|using|refusing)|accused of|charged with|for|reasons?"
    r"|attribut\w*|blam\w*|caused by|in response to|on suspicion of|to (?:avoid|stop|prevent|protect|cut))\b",
    first="abcdfiorst",
)
_TYPE_BONUS = {
    AnswerType.QUANTITY: 1.0,
    AnswerType.DATE: 1.0,
    AnswerType.PERSON: 0.9,
    AnswerType.PLACE: 0.75,
    AnswerType.NAME: 0.35,
    AnswerType.REASON: 0.35,
    AnswerType.OTHER: 0.0,
}
_LEAVE_PASSAGE = 0.06  # cost of a window that starts or ends outside the passage the index found
_PER_SENTENCE = 0.01
_PER_PASSAGE = 0.02  # further cost per passage between a window and the nearest passage found
LEAD_BONUS = 0.1  # for a window in the article's first passage
NEAR_CHARS = 30  # an answer this close to one of the question's words counts fully
WEAK_CANDIDATE = 0.6  # the share of the answer-type bonus for an answer further away


@dataclass(frozen=True, slots=True)
class Excerpt(PickledAsCall):
    text: str  # one to three sentences, at most about ``max_chars`` characters, with "…" where cut
    spans: list[tuple[int, int]]  # matched term spans in ``text``, sorted, non-overlapping
    start: int  # offset of the excerpt in its passage's text (before any ellipsis)


@dataclass(frozen=True, slots=True)
class Quote:
    excerpt: Excerpt
    ordinal: int  # the passage the quote starts in
    passage: str  # that passage's text
    terms: frozenset[str]  # the query terms the quote holds
    ordinals: frozenset[int] = frozenset()  # every passage the quote draws on
    score: float | None = None  # the window's score; None when no window held a question word


@dataclass(slots=True)
class _Sentence:
    ordinal: int
    start: int
    end: int
    text: str
    matches: list[tuple[int, int, str]]  # spans (relative to the sentence) of query terms
    # holds an answer of the wanted type outside the question's words: 0, WEAK or 1; None: not looked at yet
    candidate: float | None = None


def type_candidates(
    text: str, kind: AnswerType, is_question_word: Callable[[str], bool]
) -> list[tuple[int, int]]:
    """Spans of ``text`` that could answer a question of ``kind``: numbers and amounts, dates, names,
    places or reasons, leaving out those that hold one of the question's own words."""
    return [
        (start, end)
        for start, end, words in _kind_spans(text, kind)
        if not any(is_question_word(w) for w in words)
    ]


# (the kind's value, the sentence) -> its spans: keys and values of strings and numbers only, which the garbage
# collector stops walking once they have survived a collection
_KIND_CACHE: dict[tuple[str, str], tuple[tuple[int, int, tuple[str, ...]], ...]] = {}


def _kind_spans(text: str, kind: AnswerType) -> tuple[tuple[int, int, tuple[str, ...]], ...]:
    """What in ``text`` has the shape of an answer of ``kind`` (whatever the question), once per sentence."""
    key = (kind.value, text)
    found = _KIND_CACHE.get(key)
    if found is not None:
        return found
    out: list[tuple[int, int, tuple[str, ...]]] = []
    if kind is AnswerType.QUANTITY or kind is AnswerType.DATE:
        shape = _QUANTITY if kind is AnswerType.QUANTITY else _DATE
        out = [(start, end, (text[start:end],)) for start, end in shape.spans(text)]
    elif kind is AnswerType.REASON:
        out = [(start, end, ()) for start, end in _REASON.spans(text)]
    elif kind in (AnswerType.PERSON, AnswerType.PLACE, AnswerType.NAME):
        for m in _NAME.finditer(text):
            start, end = m.span()
            words = tuple(m.group().split())
            if start == 0 and len(words) == 1 and kind is not AnswerType.PLACE:
                continue  # a capital at the start of a sentence says nothing
            if kind is AnswerType.PERSON and len(words) < 2 and not _looks_named(text, start):
                continue
            if kind is AnswerType.PLACE and not _PLACE_CUE.search(text[max(0, start - 20) : start]):
                continue
            out.append((start, end, words))
    make_room(_KIND_CACHE, _LAYOUT_CACHE_LIMIT)
    found = _KIND_CACHE[key] = tuple(out)
    return found


def _looks_named(text: str, start: int) -> bool:
    """A single capitalized word is a name when a title or a verb of saying sits beside it."""
    before = text[max(0, start - 12) : start].lower()
    return bool(_NAMED_AFTER.search(before))


_NAMED_AFTER = re.compile(r"\b(?:mr|mrs|ms|dr|sir|lord|lady|by|said|says|coach|boss|chief)\.?\s+$")


_LAYOUT_CACHE: dict[tuple[str, str], tuple[tuple[int, int, tuple[tuple[int, int, str], ...]], ...]] = {}
_LAYOUT_CACHE_LIMIT = 20_000


def _layout(text: str, analyzer: Analyzer) -> tuple[tuple[int, int, tuple[tuple[int, int, str], ...]], ...]:
    """The sentences of a passage with their terms (offsets relative to the sentence), computed once per
    passage text (for passages without a layout stored with the index): a question only looks up which of
    its terms each sentence holds."""
    key = (analyzer.language, text)
    found = _LAYOUT_CACHE.get(key)
    if found is None:
        sentences, spans = passage_layout(text, analyzer)
        found = tuple(
            (s, e, tuple((a - s, b - s, t) for a, b, t in spans[lo:hi])) for s, e, lo, hi in sentences
        )
        make_room(_LAYOUT_CACHE, _LAYOUT_CACHE_LIMIT)
        _LAYOUT_CACHE[key] = found
    return found


def _sentences(
    ordinal: int, text: str, analyzer: Analyzer, weights: dict[str, float], stored: Sentences | None = None
) -> list[_Sentence]:
    if stored is not None:  # the layout kept with the index, already narrowed to the question's terms
        return [_Sentence(ordinal, s, e, text[s:e], matches) for s, e, matches in stored]
    return [
        _Sentence(ordinal, s, e, text[s:e], [m for m in terms if m[2] in weights])
        for s, e, terms in _layout(text, analyzer)
    ]


_WORD_TERMS: dict[str, dict[str, tuple[str, ...]]] = {}  # language -> word -> its terms


def _question_word_test(query: Query, analyzer: Analyzer) -> Callable[[tuple[str, ...]], bool]:
    """Does a span's words (``_kind_spans``) hold one of the question's own words (all its terms among the
    query's)? Each word's terms are kept whatever the question (the quotes of the next questions look at many
    of the same words), so a question only compares them with its own; a span's words are looked at in order
    until one is the question's."""
    asked = frozenset(query.terms)
    known = _WORD_TERMS.setdefault(analyzer.language, {})

    def holds_question_word(words: tuple[str, ...]) -> bool:
        for word in words:
            terms = known.get(word)
            if terms is None:
                make_room(known, _LAYOUT_CACHE_LIMIT)
                terms = known[word] = tuple(analyzer.terms(word))
            if terms and asked.issuperset(terms):
                return True
        return False

    return holds_question_word


def _candidate(
    sentence: _Sentence, query: Query, holds_question_word: Callable[[tuple[str, ...]], bool]
) -> float:
    """Does ``sentence`` hold an answer of the wanted type that is not made of the question's own words:
    1.0 beside one of the question's words, ``WEAK_CANDIDATE`` elsewhere in the sentence, 0.0 if not."""
    shapes = _kind_spans(sentence.text, query.kind)
    if not shapes:
        return 0.0
    # An answer beside the question's own words ("106 floors", "played by Leslie Grantham") counts fully;
    # one elsewhere in the sentence counts less. Those beside are looked at first, and only until one is
    # not made of the question's own words (a word seen for the first time is analysed).
    own = query.own
    zones = [(a - NEAR_CHARS, b + NEAR_CHARS) for a, b, t in sentence.matches if t in own]
    further: list[tuple[str, ...]] = []
    for s, e, words in shapes:
        for lo, hi in zones:
            if lo <= e and s <= hi:
                break
        else:
            further.append(words)
            continue
        if not holds_question_word(words):
            return 1.0
    return 0.0 if all(map(holds_question_word, further)) else WEAK_CANDIDATE


def choose_quote(
    passages: Sequence[tuple[int, str]],
    centers: int | Sequence[int],
    query: Query,
    analyzer: Analyzer,
    *,
    idf: Callable[[str], float] | None = None,
    max_chars: int = 350,
    following: int = 1,
    lead: bool = True,
    layout: Callable[[int, str], Sentences | None] | None = None,
    weights: dict[str, float] | None = None,
    laid_out: dict[int, list[_Sentence]] | None = None,
) -> Quote:
    """The best window of ``passages`` (ordinal, text) for ``query``: in the passages found (``centers``,
    best first), the ``following`` passages after the best, and (``lead``) the article's first passage.
    ``layout(ordinal, text)`` gives a passage's sentences with the query's terms in them, as kept with the
    index (None for a passage it does not know, which is then analysed here). ``weights``: the query's
    ``quote_weights`` when the caller computed them once for several quotes of one question. ``laid_out``:
    a dict the quotes of one article for one question share, so that a second quote reads its passages'
    sentences (and what was found in them) from the first."""
    max_chars = max(int(max_chars), 1)
    by_ordinal = dict(passages)
    found = [centers] if isinstance(centers, int) else list(centers)
    found = [c for c in found if (by_ordinal.get(c) or "").strip()]
    if not found:
        first = found[0] if found else (centers if isinstance(centers, int) else 0)
        return Quote(Excerpt("", [], 0), first, by_ordinal.get(first, ""), frozenset())
    if weights is None:
        weights = quote_weights(query, idf)
    if laid_out is None:
        laid_out = {}
    near = set(found) | set(range(found[0], found[0] + following + 1)) | ({0} if lead else set())
    sentences: list[_Sentence] = []
    for ordinal in sorted(o for o in near if o in by_ordinal):
        kept = laid_out.get(ordinal)
        if kept is None:
            text = by_ordinal[ordinal]
            if not text.strip():
                continue
            stored = layout(ordinal, text) if layout is not None else None
            kept = laid_out[ordinal] = _sentences(ordinal, text, analyzer, weights, stored)
        sentences.extend(kept)
    windows = _windows(sentences, found, query, weights, max_chars)
    best = _best_window(windows, sentences, query, analyzer)
    if best is None:  # no sentence holds a question word: the head of the passage found
        window = [s for s in sentences if s.ordinal == found[0]][:1]
    else:
        window = sentences[best[1] : best[2] + 1]
    return _render(window, by_ordinal, weights, query, analyzer, max_chars, best[0] if best else None)


class _Windows(NamedTuple):
    """The windows that may be quoted (``windows_kernel``): each one's first and last sentence, its score with
    no answer-type bonus, with a weak one and with the full one, and their order from the highest score they
    could reach down."""

    first: np.ndarray
    last: np.ndarray
    plain: np.ndarray
    weak: np.ndarray
    full: np.ndarray
    order: np.ndarray


def _windows(
    sentences: list[_Sentence], found: list[int], query: Query, weights: dict[str, float], max_chars: int
) -> _Windows:
    """Every window of one to ``MAX_SENTENCES`` neighbouring sentences that may be quoted, in order (by its
    first sentence, then its length), scored for each answer-type bonus it could get (see ``window_score``)."""
    number = {t: k for k, t in enumerate(weights)}
    own = query.own
    facts = [x.ordinal for x in sentences]
    facts += [len(x.text) + 1 for x in sentences]
    facts += [t in own for t in weights]
    facts += found
    for k, x in enumerate(sentences):
        for _, _, t in x.matches:
            facts += (k, number[t])
    weight = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
    return _scored(np.array(facts, dtype=np.int64), len(sentences), len(found), weight, max_chars, query.kind)


def _scored(
    facts: np.ndarray, n: int, n_found: int, weights: np.ndarray, max_chars: int, kind: AnswerType
) -> _Windows:
    """``windows_kernel`` with this module's scoring constants."""
    return _Windows(
        *windows_kernel(
            facts,
            n,
            len(weights),
            n_found,
            weights,
            max_chars,
            MAX_SENTENCES,
            _TYPE_BONUS[kind],
            WEAK_CANDIDATE,
            FOCUS,
            _PER_SENTENCE,
            _LEAVE_PASSAGE,
            _PER_PASSAGE,
            LEAD_BONUS,
        )
    )


def load_compiled() -> None:
    """Load the compiled window kernel now (from numba's cache; compiled once after an install), as the index
    loads its own: the first question's quotes are then as fast as the others'."""
    # one sentence in passage 0, of length 0, found; no terms
    _scored(np.zeros(3, dtype=np.int64), 1, 1, np.zeros(0, dtype=np.float64), 350, AnswerType.OTHER)


_CLOSE = 1e-6  # windows this close to the best score are compared in order, as if all had been scored


def _best_window(
    windows: _Windows, sentences: list[_Sentence], query: Query, analyzer: Analyzer
) -> tuple[float, int, int] | None:
    """The best of ``windows`` as (score, first sentence, last sentence): the first in order whose score
    beats every earlier one by more than 1e-9.

    Whether a sentence holds an answer of the wanted type costs the most to find out (its answer-shaped
    spans, their words), so it is found out only for the windows that could still win: they are looked at
    from the highest score they could reach with the full bonus down, until that is below the best score
    found. A window left out therefore scores below the best and could not have been chosen."""
    if not len(windows.first):
        return None
    first, last = windows.first.tolist(), windows.last.tolist()
    if _TYPE_BONUS[query.kind] and not query.own.isdisjoint(t for s in sentences for _, _, t in s.matches):
        holds_question_word = _question_word_test(query, analyzer)

        def top_candidate(i: int, j: int) -> float:
            top = 0.0
            for sentence in sentences[i : j + 1]:
                value = sentence.candidate
                if value is None:
                    value = sentence.candidate = _candidate(sentence, query, holds_question_word)
                top = max(top, value)
            return top

        plain, weak, full = windows.plain.tolist(), windows.weak.tolist(), windows.full.tolist()
        scores: dict[int, float] = {}
        top = -math.inf
        for k in windows.order.tolist():
            if full[k] < top - _CLOSE:
                break  # this window and those after it cannot reach the best
            value = top_candidate(first[k], last[k])
            score = scores[k] = (full if value == 1.0 else weak if value else plain)[k]
            top = max(top, score)
        ranked = [(k, scores[k]) for k in sorted(scores) if scores[k] >= top - _CLOSE]
    else:
        ranked = list(enumerate(windows.plain.tolist()))
    best: tuple[float, int, int] | None = None
    for k, score in ranked:
        if best is None or score > best[0] + 1e-9:
            best = (score, first[k], last[k])
    return best


def join_quotes(first: Quote, second: Quote) -> Quote:
    """Two quotes of one article as one: the second on a line of its own after "…"."""
    lead = "" if second.excerpt.text.startswith(ELLIPSIS) else ELLIPSIS
    shift = len(first.excerpt.text) + 1 + len(lead)
    text = f"{first.excerpt.text}\n{lead}{second.excerpt.text}"
    spans = first.excerpt.spans + [(a + shift, b + shift) for a, b in second.excerpt.spans]
    return replace(
        first,
        excerpt=Excerpt(text=text, spans=spans, start=first.excerpt.start),
        terms=first.terms | second.terms,
        ordinals=first.ordinals | second.ordinals,
    )


def quote_weights(query: Query, idf: Callable[[str], float] | None) -> dict[str, float]:
    """What each of the query's terms weighs in a quote: its idf (plain 1.0 without ``idf``), less for a
    follow-up's context."""
    weights: dict[str, float] = {}
    for term, w in query.terms.items():
        value = 1.0
        if idf is not None:
            try:
                value = float(idf(term))
            except (ArithmeticError, TypeError, ValueError):  # a weight we cannot use counts as plain
                value = 1.0
            if not math.isfinite(value):
                value = 1.0
            elif value <= 0:
                value = UNKNOWN_TERM_WEIGHT
        # A follow-up's context chose the article; inside it, the question's own words choose the quote.
        weights[term] = value * min(w, 1.0) ** 2
    return weights


def _render(
    window: list[_Sentence],
    by_ordinal: dict[int, str],
    weights: dict[str, float],
    query: Query,
    analyzer: Analyzer,
    max_chars: int,
    score: float | None,
) -> Quote:
    """The quote of the chosen ``window`` (its ``score``), cut to ``max_chars`` around its matches."""
    first = window[0]
    passage = by_ordinal[first.ordinal]
    if all(s.ordinal == first.ordinal for s in window):
        text, base = passage, 0
        start, end = first.start, window[-1].end
    else:  # the window spans two passages: a line break between them, as between paragraphs
        text = "".join(
            ("" if k == 0 else ("\n" if s.ordinal != window[k - 1].ordinal else " ")) + s.text
            for k, s in enumerate(window)
        )
        base, start, end = None, 0, len(text)
    matches: list[tuple[int, int, float]] = []
    terms: set[str] = set()
    offset = 0
    for s in window:
        at = s.start if base is not None else offset
        for a, b, t in s.matches:
            matches.append((at + a, at + b, weights[t]))
            terms.add(t)
        offset += len(s.text) + 1
    if end - start > max_chars:
        inside = [(a, b, w) for a, b, w in matches if a >= start and b <= end]
        inside += _candidate_marks(window, base, query, analyzer, weights)
        cut_start, cut_end = _cut(text, start, end, inside, max_chars)
    else:
        cut_start, cut_end = start, end
    if cut_end <= cut_start:
        cut_start, cut_end = _trim(text, start, min(end, start + max(max_chars - 1, 1)))
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
    spans = _merge([(a + shift, b + shift) for a, b, _ in matches if a >= cut_start and b <= cut_end])
    excerpt = Excerpt(
        text=f"{lead}{body}{tail}", spans=spans, start=cut_start if base is not None else first.start
    )
    return Quote(
        excerpt,
        first.ordinal,
        passage,
        frozenset(terms & query.terms.keys()),
        frozenset(s.ordinal for s in window),
        score,
    )


def _candidate_marks(
    window: list[_Sentence], base: int | None, query: Query, analyzer: Analyzer, weights: dict[str, float]
) -> list[tuple[int, int, float]]:
    """Answer-type candidates of the window as weighted spans, so a cut keeps the likely answer."""
    weight = (sum(weights.values()) or 1.0) * _TYPE_BONUS[query.kind]
    holds_question_word = _question_word_test(query, analyzer)
    out = []
    offset = 0
    for s in window:
        at = s.start if base is not None else offset
        if s.candidate:
            out += [
                (at + a, at + b, weight)
                for a, b, words in _kind_spans(s.text, query.kind)
                if not holds_question_word(words)
            ]
        offset += len(s.text) + 1
    return out


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
        got = sum(w for s, e, w in set(matches) if s >= a and e <= b)
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
