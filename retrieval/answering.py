"""From a question to an answer: spelling, first-stage BM25, re-ranking, quotes and the verdict.

1. The question (and, for a follow-up, the earlier questions as lighter context) becomes weighted
   terms; a term the archive has never seen but that is one or two edits from one it has is
   corrected, and the correction is reported.
2. BM25 (rank-bm25's scores, from the index) gives a pool of candidate passages.
3. Each candidate article is re-scored with evidence BM25 cannot see: how much of the question's
   idf weight the whole article (title and every passage) holds, and how many of its passages match.
4. The quote is chosen from a window in the passages found, the passage after each, or the article's first.
5. The verdict: when even the best articles miss a distinctive term of the question (one the
   archive has never seen, or a rare one no top result holds), the archive has no answer. Each
   result lists the question's distinctive words it lacks ("Missing: qatar").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from retrieval.analyze import Analyzer
from retrieval.index import BM25Index, Hit
from retrieval.question import Query
from retrieval.spelling import Correction, Speller

__all__ = ["Candidate", "Plan", "Verdict", "plan_query", "rerank", "verdict", "surface_words"]

POOL = 16  # first-stage passages considered for re-ranking (at least twice the answers asked for)
ARTICLE_WEIGHT = 0.5  # how much the article's coverage of the question moves a passage's score
SUPPORT_WEIGHT = 0.08  # per further matching passage of the same article in the pool (capped)
# A term counts as distinctive (shown as "Missing: ..." where a result lacks it) when its idf is at
# least this share of the question's rarest known term's.
DISTINCTIVE_SHARE = 0.6
# Abstain when each of the best articles lacks this share of the question's idf weight, including a
# term at least RAREST_SHARE as rare as the question's rarest.
ABSTAIN_MISSING_SHARE = 0.40
RAREST_SHARE = 0.85
UNKNOWN_DECISIVE_PASSAGES = 2_000


@dataclass(frozen=True, slots=True)
class Plan:
    query: Query  # with corrections applied
    corrections: list[Correction]
    unknown: list[str]  # own terms the archive has never seen and that could not be corrected


def plan_query(query: Query, index: BM25Index, speller: Speller | None) -> Plan:
    """Correct the question's unknown terms where a near known term exists."""
    corrections: list[Correction] = []
    unknown: list[str] = []
    terms = dict(query.terms)
    own = set(query.own)
    changed = False
    for term in query.own:
        if index.idf(term) > 0:
            continue
        if index.analyzer.is_stopword(term):  # a stopword once stemmed ("whats" -> "what")
            terms.pop(term, None)
            own.discard(term)
            changed = True
            continue
        fixed = speller.correct(term) if speller is not None else None
        if fixed is None:
            unknown.append(term)
            continue
        corrections.append(Correction(term, fixed))
        weight = terms.pop(term)
        terms[fixed] = max(terms.get(fixed, 0.0), weight)
        own.discard(term)
        own.add(fixed)
    if corrections or changed:
        query = replace(query, terms=terms, own=frozenset(own))
    return Plan(query, corrections, unknown)


@dataclass(slots=True)
class Candidate:
    hit: Hit
    score: float  # the re-ranked score
    present: set[str] = field(default_factory=set)  # query terms the article holds (title or body)


def rerank(
    hits: Sequence[Hit],
    query: Query,
    idf: Callable[[str], float],
    present: dict[str, set[str]],
) -> list[Candidate]:
    """Re-score the pool: a passage's BM25 score, lifted by how much of the question's weight its
    whole article holds and by the article's other matching passages."""
    if not hits:
        return []
    weights = {t: max(idf(t), 0.0) * min(w, 1.0) for t, w in query.terms.items()}
    total = sum(weights.values()) or 1.0
    top = max(h.score for h in hits) or 1.0
    support: dict[str, int] = {}
    for h in hits:
        support[h.article_id] = support.get(h.article_id, 0) + 1
    lifts: dict[str, tuple[float, float]] = {}  # article -> what its coverage and its support add, once
    out = []
    for h in hits:
        held = present.get(h.article_id, set())
        lift = lifts.get(h.article_id)
        if lift is None:
            coverage = sum(weights.get(t, 0.0) for t in held) / total
            lift = lifts[h.article_id] = (
                ARTICLE_WEIGHT * coverage,
                SUPPORT_WEIGHT * math.log2(support[h.article_id]),
            )
        score = h.score / top + lift[0] + lift[1]
        out.append(Candidate(hit=h, score=score, present=held))
    out.sort(key=lambda c: -c.score)
    return out


@dataclass(frozen=True, slots=True)
class Verdict:
    no_match: bool
    distinctive: list[str]  # the question's distinctive terms, rarest first


def distinctive_terms(query: Query, idf: Callable[[str], float], unknown: Sequence[str]) -> list[str]:
    known = {t: idf(t) for t in query.own if idf(t) > 0}
    if not known:
        return list(unknown)
    rarest = max(known.values())
    cut = DISTINCTIVE_SHARE * rarest
    # Equally rare words in a fixed order (the question's own words are a set), so an answer is the same every run.
    chosen = sorted((t for t, v in known.items() if v >= cut), key=lambda t: (-known[t], t))
    return list(unknown) + chosen


def verdict(
    query: Query,
    idf: Callable[[str], float],
    unknown: Sequence[str],
    candidates: Sequence[Candidate],
    *,
    top: int = 3,
    archive_passages: int = 0,
) -> Verdict:
    """No answer when the question holds a word the archive has never seen (in an archive large
    enough that its vocabulary covers the language: UNKNOWN_DECISIVE_PASSAGES; in a smaller one an
    unknown word says nothing and is left out), or when each of the best articles lacks the question's
    rarest term (or one nearly as rare) and a large share of its weight."""
    distinct = distinctive_terms(query, idf, unknown)
    if not candidates or (unknown and archive_passages >= UNKNOWN_DECISIVE_PASSAGES):
        return Verdict(True, distinct)
    weights = {t: w for t in query.own if (w := max(idf(t), 0.0)) > 0}
    if not weights:
        return Verdict(False, distinct)
    total = sum(weights.values())
    rarest = max(weights.values())
    for c in candidates[:top]:
        lacking = [t for t in weights if t not in c.present]
        missing_share = sum(weights[t] for t in lacking) / total
        lacks_rarest = any(weights[t] >= RAREST_SHARE * rarest for t in lacking)
        if missing_share < ABSTAIN_MISSING_SHARE or not lacks_rarest:
            return Verdict(False, distinct)
    return Verdict(True, distinct)


def surface_words(question: str, analyzer: Analyzer) -> dict[str, str]:
    """term -> the word of ``question`` it came from (the first one), to show people their own words."""
    out: dict[str, str] = {}
    for start, end, term in analyzer.term_spans(question):
        out.setdefault(term, question[start:end])
    return out
