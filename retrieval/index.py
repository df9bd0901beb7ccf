"""BM25 passage index: build, save, load (memory-mapped) and search.

Scores follow rank-bm25's formulas exactly (``BM25Okapi``, ``BM25Plus``, ``BM25L``), but instead of
scoring every passage per question the per-(term, passage) weights are precomputed into a
term-major sparse index:

* ``term_ptr`` (int64, terms + 1) delimits each term's postings in ``post_doc`` (int32 passage
  numbers, ascending), ``post_w`` (float32 weight) and ``post_tf`` (uint16 term frequency);
* a question sums its terms' rows into a float32 buffer, rarest terms first; once the terms left
  cannot lift an unseen passage into the top results (MaxScore), the remaining, long rows are only
  probed for the passages still in contention;
* the final candidates are re-scored exactly in float64 from the term frequencies, so the scores
  returned equal rank-bm25's ``get_scores`` for the same tokens.

The ranking policy on top: at most ``per_article`` passages per article, exact and
near-duplicate articles collapsed into one, an optional publication date range, and a no-match
verdict when the best passages cover too little of the question's idf weight.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from retrieval.analyze import Analyzer, fold

__all__ = ["BM25Index", "Hit", "IndexDoc", "IndexLoadError", "Ranking", "VARIANTS"]

FORMAT = "newsdesk-bm25"
FORMAT_VERSION = 1
VARIANTS = ("okapi", "plus", "l")

# Chosen on SQuAD dev (2,067 paragraphs, 10,570 questions); see bench/RESULTS.md.
DEFAULT_VARIANT = "okapi"
DEFAULT_K1 = 0.9
DEFAULT_B = 0.75
DEFAULT_INCLUDE_TITLE = True
# A question gets a no-match verdict unless one of its NO_MATCH_TOP best passages matches at least
# this share of its idf weight; words the index has never seen count in that weight as much as a
# term found in a single passage (calibrated in bench/RESULTS.md).
DEFAULT_MIN_COVERAGE = 0.35
NO_MATCH_TOP = 5
MAX_QUERY_TERMS = 64
_UNDATED = np.iinfo(np.int32).min
_EPOCH = datetime.date(1970, 1, 1)


class IndexLoadError(Exception):
    """The index directory is missing, incomplete, corrupt or from another format version."""


@dataclass(frozen=True, slots=True)
class IndexDoc:
    passage_id: int  # the store's row id of the passage (any int64)
    article_id: str
    title: str
    text: str
    published: str | None  # ISO 8601 date or datetime, or None
    dup_key: str  # equal for exact duplicate articles (content hash)


@dataclass(frozen=True, slots=True)
class Hit:
    passage_id: int
    article_id: str
    score: float
    coverage: float  # share of the question's idf weight this passage matched, 0..1


@dataclass(slots=True)
class Ranking:
    hits: list[Hit]
    no_match: bool
    terms: list[str]  # the analyzed query terms that exist in the index
    total: int  # passages matching at least one term, before the per-article cap (estimated on very long queries)


# ---------------------------------------------------------------------------------------------
# numba kernels
# ---------------------------------------------------------------------------------------------

_VARIANT_CODE = {"okapi": 0, "plus": 1, "l": 2}


@numba.njit(cache=True, nogil=True)
def _weight(code, idf, tf, dl, avgdl, k1, b, delta):
    """rank-bm25's per-term contribution for a passage containing the term ``tf`` times, minus
    the part every passage gets (BM25Plus adds ``idf * delta`` even where the term is absent)."""
    if code == 0:
        return idf * (tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * dl / avgdl)))
    if code == 1:
        return idf * (delta + (tf * (k1 + 1.0)) / (k1 * (1.0 - b + b * dl / avgdl) + tf)) - idf * delta
    ctd = tf / (1.0 - b + b * dl / avgdl)
    return idf * tf * (k1 + 1.0) * (ctd + delta) / (k1 + ctd + delta)


@numba.njit(cache=True, nogil=True)
def _postings_weights(code, term_ptr, post_doc, post_tf, idf, doc_len, avgdl, k1, b, delta, out_w, out_ub):
    for t in range(len(term_ptr) - 1):
        ub = 0.0
        for p in range(term_ptr[t], term_ptr[t + 1]):
            w = _weight(code, idf[t], float(post_tf[p]), float(doc_len[post_doc[p]]), avgdl, k1, b, delta)
            out_w[p] = w
            if w > ub:
                ub = w
        out_ub[t] = ub


@numba.njit(cache=True, nogil=True)
def _find(post_doc, lo, hi, d):
    """Position of passage ``d`` in ``post_doc[lo:hi]`` (ascending), or -1."""
    end = hi
    while lo < hi:
        mid = (lo + hi) >> 1
        if post_doc[mid] < d:
            lo = mid + 1
        else:
            hi = mid
    if lo < end and post_doc[lo] == d:
        return lo
    return -1


@numba.njit(cache=True, nogil=True, inline="always")
def _sift_down(heap, i, k):
    """Restore the min-heap property below position i of heap[:k]."""
    while True:
        left = 2 * i + 1
        if left >= k:
            return
        small = left
        if left + 1 < k and heap[left + 1] < heap[left]:
            small = left + 1
        if heap[small] >= heap[i]:
            return
        heap[i], heap[small] = heap[small], heap[i]
        i = small


@numba.njit(cache=True, nogil=True)
def _kth_largest(values, k):
    """The k-th largest value (0.0 if there are fewer than k): a size-k min-heap, one comparison
    for most values (numba's np.partition is several times slower for small k)."""
    n = len(values)
    if n < k or k <= 0:
        return 0.0
    if 8 * k > n:
        return np.partition(values, n - k)[n - k]
    heap = values[:k].copy()
    for start in range(k // 2 - 1, -1, -1):  # heapify
        _sift_down(heap, start, k)
    for j in range(k, n):
        x = values[j]
        if x > heap[0]:
            heap[0] = x
            _sift_down(heap, 0, k)
    return heap[0]


@numba.njit(cache=True, nogil=True)
def _top_candidates(term_ptr, post_doc, post_w, q_terms, q_mult, q_ub, n_top, acc, touched, fresh,
                    doc_day, day_lo, day_hi, use_range):
    """Passages that can be among the ``n_top`` best, with their (float32) scores.

    ``q_terms`` are sorted by decreasing upper bound. Returns (docs, scores, n_touched, n_full):
    the first ``n_full`` terms had every posting visited and ``n_touched`` passages contain one
    of them (with ``n_full == len(q_terms)``, the exact number of passages matching the query).
    """
    nq = len(q_terms)
    n = len(acc)
    rem = np.zeros(nq + 1)
    postings = 0
    for i in range(nq - 1, -1, -1):
        rem[i] = rem[i + 1] + q_ub[i] * q_mult[i]
        postings += term_ptr[q_terms[i] + 1] - term_ptr[q_terms[i]]
    # Heavy questions (rows covering a good part of the index): keeping a list of the passages
    # touched costs more than one sequential scan of the score buffer at the end.
    heavy = postings > n // 3
    nt = 0  # passages touched; in heavy mode only a sample of them (from the rarest rows)
    theta = 0.0
    i = 0
    while i < nq:
        # (heavy questions visit every row: probing long rows for many contenders costs more)
        if not heavy and i > 0 and nt >= n_top and rem[0] - rem[i] >= rem[i]:
            m = min(nt, 8192)  # any subset gives a valid lower bound; the first touched are the likeliest
            vals = np.empty(m, np.float32)
            for j in range(m):
                vals[j] = acc[touched[j]]
            theta = _kth_largest(vals, n_top)
            if rem[i] < theta:
                break
        t = q_terms[i]
        mult = np.float32(q_mult[i])
        start = term_ptr[t]
        end = term_ptr[t + 1]
        if heavy:
            cap = min(8192, n)
            if nt < cap:  # sample the rarest rows' passages: the likeliest best, for a score floor
                for p in range(start, end):
                    if nt == cap:
                        break
                    d = post_doc[p]
                    if use_range and (doc_day[d] < day_lo or doc_day[d] > day_hi):
                        continue
                    touched[nt] = d
                    nt += 1
            if use_range:
                for p in range(start, end):
                    d = post_doc[p]
                    if doc_day[d] < day_lo or doc_day[d] > day_hi:
                        continue
                    acc[d] += post_w[p] * mult
            else:
                for p in range(start, end):
                    acc[post_doc[p]] += post_w[p] * mult
        elif use_range:
            for p in range(start, end):
                d = post_doc[p]
                if doc_day[d] < day_lo or doc_day[d] > day_hi:
                    continue
                if acc[d] == 0.0:
                    touched[nt] = d
                    nt += 1
                acc[d] += post_w[p] * mult
        else:
            # Two passes: the random-access one has no dependency between postings (so the cache
            # misses overlap); the compaction of first-seen passages then runs at sequential speed.
            length = end - start
            for j in range(length):
                d = post_doc[start + j]
                old = acc[d]
                acc[d] = old + post_w[start + j] * mult
                fresh[j] = old == 0.0
            for j in range(length):
                touched[nt] = post_doc[start + j]  # the buffer has a spare slot
                nt += fresh[j]
        i += 1
    exhaustive = i == nq
    if heavy:
        # one sequential pass over the buffer: count the passages touched, keep the contenders
        if exhaustive:
            floor = np.float32(0.0)
            distinct = np.unique(touched[:nt])  # a lower bound needs each passage once
            if len(distinct) >= n_top:
                sample = np.empty(len(distinct), np.float32)
                for c in range(len(distinct)):
                    sample[c] = acc[distinct[c]]
                floor = np.float32(_kth_largest(sample, n_top))
        else:
            floor = np.float32(theta - rem[i])
        floor = max(floor, np.float32(1e-30))
        matched = 0
        for d in range(n):  # vectorizes
            matched += acc[d] > 0.0
        count = 0
        for d in range(n):  # with a good floor the branch is almost never taken
            if acc[d] >= floor:
                touched[count] = d
                count += 1
        cand = touched[:count].copy()
        nt = matched
    elif exhaustive:
        cand = touched[:nt].copy()
    else:
        # The terms left cannot lift an unseen passage above theta: only the passages already seen
        # can still make the top, so the remaining (long) rows are merely probed for them.
        vals = np.empty(nt, np.float32)
        for j in range(nt):
            vals[j] = acc[touched[j]]
        theta = max(theta, _kth_largest(vals, n_top))
        count = 0
        for j in range(nt):
            if vals[j] + rem[i] >= theta:
                count += 1
        cand = np.empty(count, np.int32)
        count = 0
        for j in range(nt):
            if vals[j] + rem[i] >= theta:
                cand[count] = touched[j]
                count += 1
    if not exhaustive:
        is_sorted = False
        for qi in range(i, nq):
            t = q_terms[qi]
            mult = np.float32(q_mult[qi])
            pos = term_ptr[t]
            end = term_ptr[t + 1]
            if len(cand) * 64 >= end - pos:
                # a linear pass is cheaper than probing: add to every passage already seen
                for p in range(pos, end):
                    d = post_doc[p]
                    if acc[d] != 0.0:
                        acc[d] += post_w[p] * mult
            else:
                if not is_sorted:
                    cand.sort()
                    is_sorted = True
                for c in range(len(cand)):
                    d = cand[c]
                    # gallop forward from pos, then binary search
                    step = 1
                    hi = pos
                    while hi < end and post_doc[hi] < d:
                        pos = hi + 1
                        hi = pos + step
                        step <<= 1
                    if hi > end:
                        hi = end
                    lo = pos
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if post_doc[mid] < d:
                            lo = mid + 1
                        else:
                            hi = mid
                    pos = lo
                    if pos < end and post_doc[pos] == d:
                        acc[d] += post_w[pos] * mult
            if qi + 1 < nq and len(cand) > n_top:
                vals = np.empty(len(cand), np.float32)
                for c in range(len(cand)):
                    vals[c] = acc[cand[c]]
                theta = max(theta, _kth_largest(vals, n_top))
                keep = 0
                for c in range(len(cand)):
                    if vals[c] + rem[qi + 1] >= theta:
                        cand[keep] = cand[c]
                        keep += 1
                cand = cand[:keep]
    # top n_top of the candidates, best first (ties: lower passage number first)
    m = len(cand)
    if m > 4 * n_top and m > 8192:
        # the k-th best of a sample bounds the k-th best of all from below: filter, then select
        sample = np.empty(8192, np.float32)
        for c in range(8192):
            sample[c] = acc[cand[c]]
        floor = _kth_largest(sample, n_top)
        keep = 0
        for c in range(m):
            if acc[cand[c]] >= floor:
                cand[keep] = cand[c]
                keep += 1
        m = keep
    scores = np.empty(m, np.float32)
    for c in range(m):
        scores[c] = acc[cand[c]]
    cand = cand[:m]
    if m > n_top:
        cut = _kth_largest(scores, n_top)
        keep = 0
        for c in range(m):
            if scores[c] >= cut:
                cand[keep] = cand[c]
                scores[keep] = scores[c]
                keep += 1
        cand = cand[:keep]
        scores = scores[:keep]
    order = np.argsort(-scores, kind="mergesort")
    out_docs = cand[order]
    out_scores = scores[order]
    if heavy:
        acc[:] = 0.0
    else:
        for j in range(nt):
            acc[touched[j]] = 0.0
    return out_docs, out_scores, nt, i


@numba.njit(cache=True, nogil=True)
def _rescore(code, term_ptr, post_doc, post_tf, idf, doc_len, avgdl, k1, b, delta, q_terms, q_mult, docs):
    """Exact float64 scores (without the constant BM25Plus part) and the summed positive idf of
    the matched terms."""
    n = len(docs)
    scores = np.zeros(n)
    covered = np.zeros(n)
    for c in range(n):
        d = docs[c]
        s = 0.0
        cov = 0.0
        for qi in range(len(q_terms)):
            t = q_terms[qi]
            p = _find(post_doc, term_ptr[t], term_ptr[t + 1], d)
            if p >= 0:
                s += q_mult[qi] * _weight(code, idf[t], float(post_tf[p]), float(doc_len[d]), avgdl, k1, b, delta)
                if idf[t] > 0:
                    cov += idf[t]
        scores[c] = s
        covered[c] = cov
    return scores, covered


@numba.njit(cache=True, nogil=True)
def _search_kernel(code, term_ptr, post_doc, post_w, post_tf, idf, doc_len, avgdl, k1, b, delta,
                   q_terms, q_mult, q_ub, n_top, acc, touched, fresh, doc_day, day_lo, day_hi, use_range):
    """Candidates, their exact scores and covered idf, the touched count and exhaustiveness."""
    docs, _, nt, n_full = _top_candidates(term_ptr, post_doc, post_w, q_terms, q_mult, q_ub, n_top, acc,
                                          touched, fresh, doc_day, day_lo, day_hi, use_range)
    exact, covered = _rescore(code, term_ptr, post_doc, post_tf, idf, doc_len, avgdl, k1, b, delta,
                              q_terms, q_mult, docs)
    return docs, exact, covered, nt, n_full


@numba.njit(cache=True, nogil=True)
def _find_term(blob, offsets, key):
    """Index of ``key`` (UTF-8 bytes) in the sorted term table, or -1."""
    lo = 0
    hi = len(offsets) - 1
    nk = len(key)
    while lo < hi:
        mid = (lo + hi) >> 1
        s = offsets[mid]
        e = offsets[mid + 1]
        n = e - s
        cmp = 0
        for j in range(min(n, nk)):
            x = blob[s + j]
            y = key[j]
            if x != y:
                cmp = -1 if x < y else 1
                break
        if cmp == 0 and n != nk:
            cmp = -1 if n < nk else 1
        if cmp == 0:
            return mid
        if cmp < 0:
            lo = mid + 1
        else:
            hi = mid
    return -1


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _day_number(published: str | None) -> int:
    if not published:
        return _UNDATED
    try:
        return (datetime.date.fromisoformat(published[:10]) - _EPOCH).days
    except ValueError:
        return _UNDATED


def _normalized_title(title: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", fold(title)))


def _blob(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


def _idf_table(variant: str, df: np.ndarray, n: int, epsilon: float) -> np.ndarray:
    """rank-bm25's idf for each term (document frequencies ``df``, ``n`` passages)."""
    df = df.astype(np.float64)
    if variant == "okapi":
        idf = np.log(n - df + 0.5) - np.log(df + 0.5)
        if len(idf):
            eps = epsilon * (float(idf.sum()) / len(idf))
            idf[idf < 0] = eps
        return idf
    if variant == "plus":
        return np.log((n + 1) / df)
    return np.log(n + 1) - np.log(df + 0.5)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _monotonic_from_zero(offsets: np.ndarray, end: int) -> bool:
    return len(offsets) > 0 and int(offsets[0]) == 0 and int(offsets[-1]) == end and bool(
        np.all(np.diff(offsets) >= 0))


def _values_in_range(arrays: dict[str, np.ndarray], n: int) -> bool:
    """Every number the search kernels use as an index points inside its array (one pass each)."""
    post_doc, doc_article, art_group = arrays["post_doc"], arrays["doc_article"], arrays["art_group"]
    n_articles = len(art_group)
    return (
        _monotonic_from_zero(arrays["term_ptr"], len(post_doc))
        and _monotonic_from_zero(arrays["term_off"], len(arrays["term_blob"]))
        and _monotonic_from_zero(arrays["art_off"], len(arrays["art_blob"]))
        and (len(post_doc) == 0 or (int(post_doc.min()) >= 0 and int(post_doc.max()) < n))
        and (n == 0 or (int(doc_article.min()) >= 0 and int(doc_article.max()) < n_articles))
        and (n_articles == 0 or (int(art_group.min()) >= 0 and int(art_group.max()) < n_articles))
    )


_ARRAYS = (
    "term_ptr", "term_idf", "term_ub", "term_blob", "term_off",
    "post_doc", "post_w", "post_tf",
    "doc_len", "doc_article", "doc_pid", "doc_day",
    "art_group", "art_blob", "art_off",
)


# ---------------------------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------------------------


class BM25Index:
    """Passages ranked by BM25; immutable once built, safe to search from many threads."""

    def __init__(self, arrays: dict[str, np.ndarray], params: dict, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._a = arrays
        self.variant: str = params["variant"]
        self.k1 = float(params["k1"])
        self.b = float(params["b"])
        self.delta = float(params["delta"])
        self.epsilon = float(params["epsilon"])
        self.include_title = bool(params["include_title"])
        self.avgdl = float(params["avgdl"])
        self.min_coverage = float(params.get("min_coverage", DEFAULT_MIN_COVERAGE))
        self.n_passages = int(len(arrays["doc_len"]))
        self.n_articles = int(len(arrays["art_group"]))
        self.n_terms = int(len(arrays["term_idf"]))
        self._code = _VARIANT_CODE[self.variant]
        # the idf a term that occurs in a single passage would get; stands in for unknown terms
        self._unknown_idf = float(_idf_table(self.variant, np.array([1]), max(self.n_passages, 2), 0.0)[0])
        self._local = threading.local()
        self._term_cache: dict[str, int] = {}
        # per-term document frequency, for the match-count estimate
        self._df = np.diff(arrays["term_ptr"])

    # -- building -------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        docs: Iterable[IndexDoc],
        analyzer: Analyzer,
        *,
        progress: Callable[[int], None] | None = None,
        variant: str = DEFAULT_VARIANT,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        delta: float | None = None,
        epsilon: float = 0.25,
        include_title: bool = DEFAULT_INCLUDE_TITLE,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
    ) -> BM25Index:
        if variant not in VARIANTS:
            raise ValueError(f"unknown BM25 variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if delta is None:
            delta = 1.0 if variant == "plus" else 0.5
        vocab: dict[str, int] = {}
        flat: list[int] = []
        doc_len: list[int] = []
        doc_article: list[int] = []
        doc_pid: list[int] = []
        art_index: dict[str, int] = {}
        art_ids: list[str] = []
        art_title_ids: list[list[int]] = []
        art_day: list[int] = []
        art_dup: list[str] = []
        art_title: list[str] = []
        art_first: list[frozenset[int] | None] = []
        terms_of = analyzer.terms
        setdefault = vocab.setdefault
        n = 0
        for doc in docs:
            art = art_index.get(doc.article_id)
            if art is None:
                art = len(art_ids)
                art_index[doc.article_id] = art
                art_ids.append(doc.article_id)
                art_title_ids.append([setdefault(t, len(vocab)) for t in terms_of(doc.title)] if include_title else [])
                art_day.append(_day_number(doc.published))
                art_dup.append(doc.dup_key)
                art_title.append(doc.title)
                art_first.append(None)
            ids = [setdefault(t, len(vocab)) for t in terms_of(doc.text)]
            if art_first[art] is None:
                art_first[art] = frozenset(ids)
            ids.extend(art_title_ids[art])
            flat.extend(ids)
            doc_len.append(len(ids))
            doc_article.append(art)
            doc_pid.append(doc.passage_id)
            n += 1
            if progress is not None and n % 10_000 == 0:
                progress(n)
        if progress is not None and n % 10_000:
            progress(n)
        if n == 0:
            raise ValueError("cannot build an index without passages")

        # sort the vocabulary so a loaded index can look terms up by binary search
        terms = sorted(vocab, key=lambda t: t.encode("utf-8"))
        remap = np.empty(len(vocab), np.int64)
        remap[np.fromiter((vocab[t] for t in terms), np.int64, len(terms))] = np.arange(len(terms))
        del vocab
        lengths = np.asarray(doc_len, np.int32)
        token_terms = remap[np.asarray(flat, np.int64)]
        del flat
        key = token_terms * n + np.repeat(np.arange(n, dtype=np.int64), lengths)
        del token_terms
        key.sort()
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        tf = np.diff(np.append(starts, len(key)))
        key = key[starts]
        post_term = key // n
        post_doc = (key - post_term * n).astype(np.int32)
        del key
        term_ptr = np.zeros(len(terms) + 1, np.int64)
        np.cumsum(np.bincount(post_term, minlength=len(terms)), out=term_ptr[1:])
        del post_term
        post_tf = np.minimum(tf, np.iinfo(np.uint16).max).astype(np.uint16)
        df = np.diff(term_ptr)
        avgdl = float(lengths.sum()) / n
        idf = _idf_table(variant, df, n, epsilon)
        post_w = np.empty(len(post_doc), np.float32)
        term_ub = np.empty(len(terms), np.float64)
        _postings_weights(_VARIANT_CODE[variant], term_ptr, post_doc, post_tf, idf, lengths, avgdl,
                          float(k1), float(b), float(delta), post_w, term_ub)
        # float32 rounding: keep the bounds safely above any stored weight
        term_ub = term_ub * (1 + 1e-6) + 1e-9

        # duplicates: the same dup_key, or the same title and a near-identical first passage
        uf = _UnionFind(len(art_ids))
        first_by_key: dict[str, int] = {}
        by_title: dict[str, list[int]] = {}
        for a, dup in enumerate(art_dup):
            if dup:
                if dup in first_by_key:
                    uf.union(first_by_key[dup], a)
                else:
                    first_by_key[dup] = a
            title = _normalized_title(art_title[a])
            if title:
                by_title.setdefault(title, []).append(a)
        for group in by_title.values():
            if len(group) < 2:
                continue
            for i, a in enumerate(group):
                for c in group[i + 1 : i + 50]:
                    sa, sc = art_first[a] or frozenset(), art_first[c] or frozenset()
                    if sa == sc or (sa and sc and len(sa & sc) >= 0.8 * len(sa | sc)):
                        uf.union(a, c)
        art_group = np.array([uf.find(a) for a in range(len(art_ids))], np.int32)
        art_day_arr = np.asarray(art_day, np.int32)
        doc_article_arr = np.asarray(doc_article, np.int32)
        term_blob, term_off = _blob(terms)
        art_blob, art_off = _blob(art_ids)
        arrays = {
            "term_ptr": term_ptr, "term_idf": idf, "term_ub": term_ub, "term_blob": term_blob,
            "term_off": term_off, "post_doc": post_doc, "post_w": post_w, "post_tf": post_tf,
            "doc_len": lengths, "doc_article": doc_article_arr, "doc_pid": np.asarray(doc_pid, np.int64),
            "doc_day": art_day_arr[doc_article_arr], "art_group": art_group,
            "art_blob": art_blob, "art_off": art_off,
        }
        params = {
            "variant": variant, "k1": float(k1), "b": float(b), "delta": float(delta),
            "epsilon": float(epsilon), "include_title": bool(include_title), "avgdl": avgdl,
            "min_coverage": float(min_coverage),
        }
        return cls(arrays, params, analyzer)

    # -- persistence ----------------------------------------------------------------------
    def _manifest(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": {
                "variant": self.variant, "k1": self.k1, "b": self.b, "delta": self.delta,
                "epsilon": self.epsilon, "include_title": self.include_title, "avgdl": self.avgdl,
                "min_coverage": self.min_coverage,
            },
            "analyzer": {"language": self.analyzer.language},
            "counts": {
                "passages": self.n_passages, "articles": self.n_articles, "terms": self.n_terms,
                "postings": int(len(self._a["post_doc"])),
            },
            "arrays": {name: [str(self._a[name].dtype), int(len(self._a[name]))] for name in _ARRAYS},
        }

    def save(self, directory: Path) -> None:
        """Write the index to ``directory`` (replacing it); a crash leaves the old one or none."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name in _ARRAYS:
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(self._a[name]), allow_pickle=False)
            (tmp / "manifest.json").write_text(json.dumps(self._manifest(), indent=2), encoding="utf-8")
            old = None
            if directory.exists():
                old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
                os.replace(directory, old)
            os.replace(tmp, directory)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        directory = Path(directory)
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise IndexLoadError(f"no index at {directory} (manifest.json missing); build it first")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexLoadError(f"index manifest {manifest_path} is unreadable: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexLoadError(f"{manifest_path} is not a newsdesk BM25 index")
        if manifest.get("version") != FORMAT_VERSION:
            raise IndexLoadError(
                f"index at {directory} has format version {manifest.get('version')}, this newsdesk reads "
                f"version {FORMAT_VERSION}; rebuild the index"
            )
        try:
            params = manifest["params"]
            language = manifest["analyzer"]["language"]
            expected = manifest["arrays"]
            arrays = {}
            for name in _ARRAYS:
                arr = np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                dtype, length = expected[name]
                if str(arr.dtype) != dtype or len(arr) != length or arr.ndim != 1:
                    raise IndexLoadError(f"index array {name}.npy does not match the manifest (corrupt index)")
                arrays[name] = np.asarray(arr)  # still memory-mapped, without np.memmap's slow indexing
            analyzer = Analyzer(language)
        except IndexLoadError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexLoadError(f"index at {directory} is incomplete or corrupt: {exc}") from exc
        counts = manifest.get("counts", {})
        n = len(arrays["doc_len"])
        if (
            len(arrays["term_ptr"]) != len(arrays["term_idf"]) + 1
            or len(arrays["term_off"]) != len(arrays["term_idf"]) + 1
            or len(arrays["post_w"]) != len(arrays["post_doc"])
            or len(arrays["post_tf"]) != len(arrays["post_doc"])
            or any(len(arrays[x]) != n for x in ("doc_article", "doc_pid", "doc_day"))
            or len(arrays["art_off"]) != len(arrays["art_group"]) + 1
            or counts.get("passages") != n
            or (len(arrays["term_ptr"]) and int(arrays["term_ptr"][-1]) != len(arrays["post_doc"]))
        ):
            raise IndexLoadError(f"index at {directory} is inconsistent (corrupt index); rebuild it")
        if not _values_in_range(arrays, n):
            # The kernels index with these numbers unchecked: a damaged file must never reach them.
            raise IndexLoadError(f"index at {directory} holds out-of-range numbers (corrupt index); rebuild it")
        index = cls(arrays, params, analyzer)
        index._warm()
        return index

    def _warm(self) -> None:
        """Load the compiled kernels for this index's (read-only, memory-mapped) array types, so
        the first question is as fast as the others."""
        a = self._a
        acc, touched, fresh = self._buffers()
        none = np.zeros(0, np.int64)
        for use_range in (False, True):
            _search_kernel(self._code, a["term_ptr"], a["post_doc"], a["post_w"], a["post_tf"], a["term_idf"],
                           a["doc_len"], self.avgdl, self.k1, self.b, self.delta, none, np.zeros(0), np.zeros(0),
                           16, acc, touched, fresh, a["doc_day"], 0, 0, use_range)
        self._term_id("a")
        self._term_cache.clear()

    # -- lookups ---------------------------------------------------------------------------
    def _term_id(self, term: str) -> int:
        cache = self._term_cache
        t = cache.get(term)
        if t is None:
            key = np.frombuffer(term.encode("utf-8"), np.uint8)
            t = int(_find_term(self._a["term_blob"], self._a["term_off"], key)) if len(key) else -1
            if len(cache) >= 200_000:
                cache.clear()
            cache[term] = t
        return t

    def idf(self, term: str) -> float:
        """The variant's idf of an analyzed term; 0.0 for terms the index has never seen."""
        t = self._term_id(term)
        return float(self._a["term_idf"][t]) if t >= 0 else 0.0

    def article_id(self, article: int) -> str:
        off = self._a["art_off"]
        return bytes(self._a["art_blob"][off[article] : off[article + 1]]).decode("utf-8")

    def article_ids(self) -> set[str]:
        blob = bytes(self._a["art_blob"])
        off = self._a["art_off"].tolist()
        return {blob[off[i] : off[i + 1]].decode("utf-8") for i in range(self.n_articles)}

    def _buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This thread's scratch buffers: scores, touched passages, first-seen flags."""
        local = self._local
        acc = getattr(local, "acc", None)
        if acc is None:
            local.acc = acc = np.zeros(self.n_passages, np.float32)
            local.touched = np.zeros(self.n_passages + 1, np.int32)
            local.fresh = np.zeros(self.n_passages, np.uint8)
        return acc, local.touched, local.fresh

    # -- scoring ---------------------------------------------------------------------------
    def score_all(self, terms: list[str]) -> np.ndarray:
        """Exact float64 scores of every passage for analyzed ``terms`` (rank-bm25's
        ``get_scores``); for tests and diagnostics, O(passages)."""
        a = self._a
        out = np.zeros(self.n_passages)
        for term in terms:
            t = self._term_id(term)
            if t < 0:
                continue
            if self.variant == "plus":
                out += float(a["term_idf"][t]) * self.delta
            lo, hi = int(a["term_ptr"][t]), int(a["term_ptr"][t + 1])
            docs = np.asarray(a["post_doc"][lo:hi])
            s, _ = _rescore(self._code, a["term_ptr"], a["post_doc"], a["post_tf"], a["term_idf"],
                            a["doc_len"], self.avgdl, self.k1, self.b, self.delta,
                            np.array([t], np.int64), np.ones(1), docs)
            out[docs] += s
        return out

    def _query(self, question: str) -> tuple[list[int], list[float], list[str], float, float]:
        """Distinct known query terms (ids, multiplicities, strings), the constant score part and
        the coverage denominator."""
        counts: dict[str, int] = {}
        for term in self.analyzer.terms(question):
            counts[term] = counts.get(term, 0) + 1
        ids: list[int] = []
        mult: list[float] = []
        names: list[str] = []
        base = 0.0
        denom = 0.0
        idf = self._a["term_idf"]
        for term, count in counts.items():
            t = self._term_id(term)
            if t < 0:
                denom += self._unknown_idf
                continue
            w = float(idf[t])
            if w > 0:
                denom += w
            if self.variant == "plus":
                base += w * self.delta * count
            ids.append(t)
            mult.append(float(count))
            names.append(term)
        if len(ids) > MAX_QUERY_TERMS:  # keep the rarest
            keep = sorted(range(len(ids)), key=lambda i: -float(idf[ids[i]]))[:MAX_QUERY_TERMS]
            keep.sort()
            ids = [ids[i] for i in keep]
            mult = [mult[i] for i in keep]
            names = [names[i] for i in keep]
        return ids, mult, names, base, denom

    def search(
        self,
        question: str,
        *,
        k: int = 5,
        offset: int = 0,
        since: datetime.date | None = None,
        until: datetime.date | None = None,
        per_article: int = 2,
        min_coverage: float | None = None,
    ) -> Ranking:
        """The ``k`` best passages after ``offset`` (ranked, capped per article, duplicates
        collapsed), optionally limited to articles published between ``since`` and ``until``
        (inclusive; undated articles are then left out)."""
        k = max(int(k), 0)
        offset = max(int(offset), 0)
        per_article = max(int(per_article), 1)
        threshold = self.min_coverage if min_coverage is None else float(min_coverage)
        ids, mult, names, base, denom = self._query(question)
        if not ids:
            return Ranking(hits=[], no_match=True, terms=[], total=0)
        a = self._a
        ub = a["term_ub"]
        order = sorted(range(len(ids)), key=lambda i: -float(ub[ids[i]]) * mult[i])
        q_terms = np.array([ids[i] for i in order], np.int64)
        q_mult = np.array([mult[i] for i in order], np.float64)
        q_ub = np.array([float(ub[ids[i]]) for i in order], np.float64)
        use_range = since is not None or until is not None
        day_lo = (since - _EPOCH).days if since is not None else _UNDATED + 1
        day_hi = (until - _EPOCH).days if until is not None else np.iinfo(np.int32).max
        wanted = offset + k
        n_top = max(16, 2 * wanted)
        acc, touched, fresh = self._buffers()
        while True:
            docs, exact, covered, n_touched, n_full = _search_kernel(
                self._code, a["term_ptr"], a["post_doc"], a["post_w"], a["post_tf"], a["term_idf"], a["doc_len"],
                self.avgdl, self.k1, self.b, self.delta, q_terms, q_mult, q_ub, n_top, acc, touched, fresh,
                a["doc_day"], day_lo, day_hi, use_range,
            )
            ranked = np.lexsort((docs, -exact)).tolist()
            picked = self._apply_policy(docs, ranked, wanted, per_article)
            if len(picked) >= wanted or len(docs) < n_top or n_top >= self.n_passages:
                break
            n_top *= 4
        if n_full == len(q_terms):
            total = int(n_touched)
        else:
            # the rows only probed were not counted: estimate their union with the counted ones
            # assuming independence (only questions with many common terms get here)
            n = self.n_passages
            missed = (1 - n_touched / n) * float(np.prod(1 - self._df[q_terms[n_full:]] / n))
            total = max(int(n_touched), int(self._df[q_terms].max()), int(round(n * (1 - missed))))
        coverages = np.minimum(covered / (denom or 1.0), 1.0).tolist()
        best = max((coverages[i] for i in ranked[:NO_MATCH_TOP]), default=0.0)
        no_match = not ranked or best < threshold
        pids = a["doc_pid"]
        doc_article = a["doc_article"]
        hits = [
            Hit(
                passage_id=int(pids[docs[i]]),
                article_id=self.article_id(int(doc_article[docs[i]])),
                score=float(exact[i] + base),
                coverage=coverages[i],
            )
            for i in picked[offset:wanted]
        ]
        return Ranking(hits=hits, no_match=no_match, terms=names, total=total)

    def _apply_policy(self, docs: np.ndarray, ranked: list[int], wanted: int, per_article: int) -> list[int]:
        articles = self._a["doc_article"][docs]
        doc_article = articles.tolist()
        groups = self._a["art_group"][articles].tolist()
        chosen_article: dict[int, int] = {}  # duplicate group -> the article shown for it
        used: dict[int, int] = {}
        picked: list[int] = []
        for i in ranked:
            art = doc_article[i]
            group = groups[i]
            shown = chosen_article.setdefault(group, art)
            if shown != art:
                continue
            if used.get(art, 0) >= per_article:
                continue
            used[art] = used.get(art, 0) + 1
            picked.append(i)
            if len(picked) >= wanted:
                break
        return picked

