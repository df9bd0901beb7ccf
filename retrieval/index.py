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
import itertools
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from retrieval.analyze import Analyzer, fold
from retrieval.kernels import _find_term, _postings_weights, _rescore, _search_kernel, _terms_held
from retrieval.layout import LayoutBuilder, Layouts, Sentences, load_layout, save_layout
from retrieval.workers import ordered, worker_pool

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
_LATEST = int(np.iinfo(np.int32).max)
_EPOCH = datetime.date(1970, 1, 1)
_YEAR = re.compile(r"(?:1[89]|20)\d\d")
log = logging.getLogger(__name__)


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


_VARIANT_CODE = {"okapi": 0, "plus": 1, "l": 2}


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


def _monotonic_from_zero(offsets: np.ndarray, end: int) -> bool:
    return (
        len(offsets) > 0
        and int(offsets[0]) == 0
        and int(offsets[-1]) == end
        and bool(np.all(np.diff(offsets) >= 0))
    )


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
    "term_ptr",
    "term_idf",
    "term_ub",
    "term_blob",
    "term_off",
    "post_doc",
    "post_w",
    "post_tf",
    "doc_len",
    "doc_article",
    "doc_pid",
    "doc_day",
    "art_group",
    "art_blob",
    "art_off",
)


# ---------------------------------------------------------------------------------------------
# building in bounded memory
# ---------------------------------------------------------------------------------------------

# Passages whose postings are sorted together before they are spilled to disk: about 40 MB of
# scratch memory per chunk, whatever the corpus size.
BUILD_CHUNK = 50_000
# Distinct whitespace-separated words whose term ids are remembered while building.
WORD_CACHE = 400_000
# Passages analysed together, in a worker process or in the build's own (about 400 KB of news text).
ANALYSIS_BATCH = 2_000
# Passage layouts are kept for archives of up to this many words (about 30 bytes a word at the end of a build,
# so at most ~360 MB); a larger archive is indexed without them, to keep the build's memory bounded.
LAYOUT_MAX_WORDS = 12_000_000
# Characters of passage text per indexed word, to tell before a build whether an archive's layouts will fit:
# news text has 8.9 (Reuters) to 9.9 (BBC); a little more, so that only archives clearly over the cap skip them.
LAYOUT_CHARS_PER_WORD = 10


def layouts_fit(text_chars: int, max_words: int | None = None) -> bool:
    """Whether passages of ``text_chars`` characters in all are likely to stay within ``max_words`` words
    (default ``LAYOUT_MAX_WORDS``), so that building their layouts is worth it (a build that passes the cap
    anyway drops them then)."""
    return text_chars <= (LAYOUT_MAX_WORDS if max_words is None else max_words) * LAYOUT_CHARS_PER_WORD


class _Spill:
    """Temporary files for a build (in the system's temporary folder); held in memory instead
    when they cannot be written (a full disk), so a build never fails for want of scratch space."""

    def __init__(self) -> None:
        self._dir: tempfile.TemporaryDirectory | None = None
        self._memory: dict[str, bytearray] = {}
        self._files: dict[str, BinaryIO] = {}
        self._sizes: dict[str, int] = {}

    def __enter__(self) -> _Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()
        self._memory.clear()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def append(self, name: str, data: bytes | memoryview) -> None:
        """Append raw bytes to the spill file ``name``."""
        if name in self._memory:
            self._memory[name] += data
            return
        try:
            f = self._files.get(name)
            if f is None:
                if self._dir is None:
                    self._dir = tempfile.TemporaryDirectory(prefix="newsdesk-index-build-")
                f = self._files[name] = open(Path(self._dir.name) / name, "wb")  # noqa: SIM115
            f.write(data)
            self._sizes[name] = self._sizes.get(name, 0) + len(data)
        except OSError as exc:
            log.warning("keeping the index build's %s in memory: %s", name, exc)
            f = self._files.pop(name, None)
            kept = bytearray()
            if f is not None:
                f.close()
                if self._dir is not None:
                    with open(Path(self._dir.name) / name, "rb") as back:
                        kept += back.read(self._sizes.get(name, 0))
            kept += data
            self._memory[name] = kept

    def read(self, name: str, dtype: type, start: int, end: int) -> np.ndarray:
        """Items ``start:end`` of what was appended to ``name``, read into memory (a file is read, not
        mapped, so the pages read do not stay in the process's memory)."""
        if name in self._memory:
            return np.frombuffer(self._memory[name], dtype)[start:end]
        f = self._files.get(name)
        if f is not None:
            f.flush()
        if end <= start or self._dir is None:
            return np.zeros(0, dtype)
        size = np.dtype(dtype).itemsize
        return np.fromfile(Path(self._dir.name) / name, dtype, count=end - start, offset=start * size)

    def array(self, name: str, dtype: type) -> np.ndarray:
        """Everything appended to ``name``, as a read-only array (memory-mapped from its file)."""
        if name in self._memory:
            return np.frombuffer(self._memory[name], dtype)
        f = self._files.pop(name, None)
        if f is None:
            return np.zeros(0, dtype)
        f.close()
        assert self._dir is not None
        if not self._sizes.get(name):
            return np.zeros(0, dtype)
        return np.memmap(Path(self._dir.name) / name, dtype=dtype, mode="r")


@dataclass(slots=True)
class _Parts:
    """What one pass over the documents leaves for the merge: the vocabulary, the per-passage and
    per-article arrays, and where each chunk's postings were spilled."""

    vocab: dict[str, int]
    df: np.ndarray  # postings per vocabulary id
    runs: list[tuple[int, int]]  # (first posting, end) of each chunk in the spilled postings
    per_doc: dict[str, array]  # doc_len, doc_article, doc_pid: one value per passage
    art_blob: bytearray
    art_off: array
    art_day: array
    dup_blob: bytearray
    dup_off: array
    dup_hash: array
    title_blob: bytearray
    title_off: array
    title_hash: array
    first_off: array  # each article's first passage's distinct term ids, spilled as "first"
    layouts: LayoutBuilder | None = None  # the passages' layouts, while they stay under the word cap


def _chunk_postings(flat: np.ndarray, lengths: np.ndarray, first_doc: int) -> tuple[np.ndarray, ...]:
    """(vocabulary id, passage, term frequency) of one chunk, sorted by id then passage."""
    n = len(lengths)
    key = flat.astype(np.int64)
    key *= n
    key += np.repeat(np.arange(n, dtype=np.int64), lengths)
    if not len(key):
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.uint16)
    key.sort()
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    tf = np.diff(np.append(starts, len(key)))
    key = key[starts]
    term = key // n
    doc = (key - term * n + first_doc).astype(np.int32)
    return term.astype(np.int32), doc, np.minimum(tf, np.iinfo(np.uint16).max).astype(np.uint16)


class _TermIds:
    """Term ids of texts, numbered in the order this analyser first meets each term (its own numbering: the
    build maps it onto the index's). The same work runs in a worker process or in the build's own one.

    ``layouts``: while set, passage texts go through the layout builder (which analyses each passage once,
    giving the same terms), until the archive passes ``layout_max_words`` words."""

    def __init__(
        self,
        analyzer: Analyzer,
        word_cache: int,
        layouts: LayoutBuilder | None = None,
        layout_max_words: int = 0,
    ) -> None:
        self.analyzer = analyzer
        self.word_cache = word_cache
        self.layouts = layouts
        self.layout_max_words = layout_max_words
        self.source = os.getpid()
        self._vocab: dict[str, int] = {}
        self._terms: list[str] = []  # the terms in their numbering order
        self._reported = 0  # terms already reported with an earlier batch's result
        self._words: dict[str, tuple[int, ...]] = {}  # whitespace-separated word -> its term ids
        self._tokens: dict[str, tuple[str, ...]] = {}  # a word's tokens (without punctuation) -> their terms

    def _number(self, term: str) -> int:
        number = self._vocab.get(term)
        if number is None:
            number = self._vocab[term] = len(self._terms)
            self._terms.append(term)
        return number

    def _learn(self, pieces: list[str]) -> None:
        words = self._words
        new = set(pieces).difference(words)
        if len(words) + len(new) > self.word_cache:
            words.clear()
            self._tokens.clear()
            new = set(pieces)
        chunk_terms, tokens, number = self.analyzer.chunk_terms, self._tokens, self._number
        for piece in new:
            words[piece] = tuple([number(t) for t in chunk_terms(piece, tokens)])

    def _add(self, text: str, flat: array) -> int:
        """Append the term ids of ``text`` to ``flat``; returns how many."""
        pieces = text.split()
        start = len(flat)
        lookup = self._words.__getitem__
        try:
            flat.extend(itertools.chain.from_iterable(map(lookup, pieces)))
        except KeyError:
            del flat[start:]
            self._learn(pieces)
            flat.extend(itertools.chain.from_iterable(map(lookup, pieces)))
        return len(flat) - start

    def analyse(self, batch: tuple[list[str], list[str]]) -> _Analysed:
        """The term ids of a batch's passage texts, then of its titles."""
        texts, titles = batch
        flat = array("i")
        lengths = array("i")
        for text in texts:
            if self.layouts is None:
                lengths.append(self._add(text, flat))
                continue
            number = self._number
            terms = self.layouts.add(text)
            flat.extend([number(t) for t in terms])
            lengths.append(len(terms))
            if self.layouts.words > self.layout_max_words:
                self.layouts = None  # too large to hold: this index keeps no layouts
        for title in titles:
            lengths.append(self._add(title, flat))
        new_terms = self._terms[self._reported :]
        self._reported = len(self._terms)
        return _Analysed(self.source, new_terms, flat, lengths)


@dataclass(slots=True)
class _Analysed:
    source: int  # the process whose numbering ``ids`` are in
    new_terms: list[str]  # the terms it numbered since its previous batch, in order
    ids: array  # the term ids of the batch's texts, then of its titles, one after the other
    lengths: array  # how many ids each text, then each title, has


# A worker process's analyser (``_start_analysis``), kept from batch to batch.
_worker_terms: _TermIds | None = None


def _start_analysis(language: str, word_cache: int) -> None:
    """(in a worker process) Make the analyser its batches share."""
    global _worker_terms
    _worker_terms = _TermIds(Analyzer(language), word_cache)


def _analyse_in_worker(batch: tuple[list[str], list[str]]) -> _Analysed:
    assert _worker_terms is not None
    return _worker_terms.analyse(batch)


def _batches(
    docs: Iterable[IndexDoc], size: int, include_title: bool
) -> Iterator[tuple[list[IndexDoc], tuple[list[str], list[str]]]]:
    """The documents ``size`` at a time, each batch with what is analysed of it: every passage's text, and the
    title of each passage whose article differs from the one before it (when titles are indexed)."""
    last = None
    batch: list[IndexDoc] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch, _texts(batch, last, include_title)
            last = batch[-1].article_id
            batch = []
    if batch:
        yield batch, _texts(batch, last, include_title)


def _texts(batch: list[IndexDoc], last: str | None, include_title: bool) -> tuple[list[str], list[str]]:
    titles = []
    if include_title:
        for doc in batch:
            if doc.article_id != last:
                titles.append(doc.title)
                last = doc.article_id
    return [doc.text for doc in batch], titles


def _collect(
    docs: Iterable[IndexDoc],
    analyzer: Analyzer,
    spill: _Spill,
    progress: Callable[[int], None] | None,
    include_title: bool,
    chunk_passages: int,
    word_cache: int,
    layouts: LayoutBuilder | None = None,
    layout_max_words: int = 0,
    workers: int = 0,
) -> _Parts:
    """One pass over ``docs``: term ids of every passage, each chunk's postings spilled as it fills; with
    ``layouts``, each passage's layout too, until the archive passes ``layout_max_words`` words.

    Without layouts, up to ``workers`` worker processes analyse batches of passages (``retrieval.workers``)
    while this process numbers their terms and spills the postings; the result is the same."""
    vocab: dict[str, int] = {}
    setdefault = vocab.setdefault
    # per analysing process: its term numbers -> this build's
    numbering: dict[int, array] = {}
    local = _TermIds(analyzer, word_cache, layouts, layout_max_words)

    parts = _Parts(
        vocab=vocab,
        df=np.zeros(0, np.int64),
        runs=[],
        per_doc={"doc_len": array("i"), "doc_article": array("i"), "doc_pid": array("q")},
        art_blob=bytearray(),
        art_off=array("q", [0]),
        art_day=array("i"),
        dup_blob=bytearray(),
        dup_off=array("q", [0]),
        dup_hash=array("q"),
        title_blob=bytearray(),
        title_off=array("q", [0]),
        title_hash=array("q"),
        first_off=array("q", [0]),
        layouts=layouts,
    )
    doc_len, doc_article, doc_pid = (parts.per_doc[k] for k in ("doc_len", "doc_article", "doc_pid"))
    art_index: dict[str, int] = {}
    flat = array("i")
    chunk_start = 0
    posted = 0
    last_art = -1
    title_ids: list[int] = []

    def flush() -> None:
        nonlocal flat, chunk_start, posted
        lengths = np.frombuffer(doc_len[chunk_start:], np.int32)  # a copy: doc_len grows on
        term, doc, tf = _chunk_postings(np.frombuffer(flat, np.int32), lengths, chunk_start)
        counts = np.bincount(term, minlength=len(vocab))
        if len(parts.df) < len(counts):
            parts.df = np.concatenate((parts.df, np.zeros(len(counts) - len(parts.df), np.int64)))
        parts.df += counts
        for name, values in (("term", term), ("doc", doc), ("tf", tf)):
            spill.append(name, values.tobytes())
        parts.runs.append((posted, posted + len(term)))
        posted += len(term)
        chunk_start = len(doc_len)
        flat = array("i")

    def in_this_numbering(result: _Analysed) -> list[int]:
        mapping = numbering.setdefault(result.source, array("i"))
        mapping.extend([setdefault(t, len(vocab)) for t in result.new_terms])
        if not len(result.ids):
            return []
        return np.frombuffer(mapping, np.int32)[np.frombuffer(result.ids, np.int32)].tolist()

    use_workers = workers if layouts is None else 0  # a layout is built where its passage is analysed
    n = 0
    with worker_pool(use_workers, _start_analysis, (analyzer.language, word_cache)) as pool:
        analysed = ordered(
            _analyse_in_worker,
            _batches(docs, max(1, ANALYSIS_BATCH), include_title),
            pool,
            use_workers,
            here=local.analyse,
        )
        for batch, result in analysed:
            ids = in_this_numbering(result)
            lengths = result.lengths
            pos = 0
            title_at = sum(lengths[: len(batch)])  # the titles' ids follow the texts'
            title_no = len(batch)
            for k, doc in enumerate(batch):
                count = lengths[k]
                text_ids = ids[pos : pos + count]
                pos += count
                art = art_index.get(doc.article_id)
                if art is None:
                    art = art_index[doc.article_id] = len(art_index)
                    parts.art_blob += doc.article_id.encode("utf-8")
                    parts.art_off.append(len(parts.art_blob))
                    parts.art_day.append(_day_number(doc.published))
                    dup = doc.dup_key.encode("utf-8")
                    parts.dup_blob += dup
                    parts.dup_off.append(len(parts.dup_blob))
                    parts.dup_hash.append(hash(dup))
                    title = _normalized_title(doc.title).encode("utf-8")
                    parts.title_blob += title
                    parts.title_off.append(len(parts.title_blob))
                    parts.title_hash.append(hash(title))
                    first = sorted(set(text_ids))
                    spill.append("first", array("i", first).tobytes())
                    parts.first_off.append(parts.first_off[-1] + len(first))
                if art != last_art:
                    if include_title:
                        end = title_at + lengths[title_no]
                        title_ids = ids[title_at:end]
                        title_at, title_no = end, title_no + 1
                    last_art = art
                flat.extend(text_ids)
                flat.extend(title_ids)
                doc_len.append(count + len(title_ids))
                doc_article.append(art)
                doc_pid.append(doc.passage_id)
                n += 1
                if n - chunk_start >= chunk_passages:
                    flush()
                if progress is not None and n % 10_000 == 0:
                    progress(n)
    parts.layouts = local.layouts
    if progress is not None and n % 10_000:
        progress(n)
    if n == 0:
        raise ValueError("cannot build an index without passages")
    if n > chunk_start:
        flush()
    return parts


def _duplicate_groups(parts: _Parts, spill: _Spill) -> np.ndarray:
    """Each article's duplicate group (the smallest article number in it): articles with the same
    ``dup_key``, or the same normalized title and a near-identical first passage (Jaccard >= 0.8 of
    their distinct terms, among the next 49 articles of that title)."""
    n = len(parts.art_day)
    parent = np.arange(n, dtype=np.int64)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    def union(a: int, c: int) -> None:
        ra, rc = find(a), find(c)
        if ra != rc:
            parent[max(ra, rc)] = min(ra, rc)

    def same_value(hashes: array, blob: bytearray, off: array) -> list[list[int]]:
        """Articles with equal non-empty values, in article order, in groups of two or more."""
        h = np.frombuffer(hashes, np.int64)
        offsets = np.frombuffer(off, np.int64)
        candidates = np.flatnonzero(offsets[1:] > offsets[:-1])
        order = candidates[np.argsort(h[candidates], kind="stable")]
        sh = h[order]
        bounds = np.flatnonzero(np.concatenate(([True], sh[1:] != sh[:-1], [True])))
        groups: list[list[int]] = []
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            if hi - lo < 2:
                continue
            by_value: dict[bytes, list[int]] = {}
            for a in order[lo:hi].tolist():
                by_value.setdefault(bytes(blob[off[a] : off[a + 1]]), []).append(a)
            groups.extend(g for g in by_value.values() if len(g) > 1)
        return groups

    for group in same_value(parts.dup_hash, parts.dup_blob, parts.dup_off):
        for a in group[1:]:
            union(group[0], a)
    first_ids = spill.array("first", np.int32)
    first_off = parts.first_off

    def first(a: int) -> frozenset[int]:
        return frozenset(first_ids[first_off[a] : first_off[a + 1]].tolist())

    for group in same_value(parts.title_hash, parts.title_blob, parts.title_off):
        sets = {a: first(a) for a in group}
        for i, a in enumerate(group):
            for c in group[i + 1 : i + 50]:
                sa, sc = sets[a], sets[c]
                if sa == sc or (sa and sc and len(sa & sc) >= 0.8 * len(sa | sc)):
                    union(a, c)
    while True:  # every article points at its group's root
        up = parent[parent]
        if np.array_equal(up, parent):
            break
        parent = up
    return parent.astype(np.int32)


def _finish(
    parts: _Parts, spill: _Spill, variant: str, k1: float, b: float, delta: float, epsilon: float
) -> tuple[dict[str, np.ndarray], float]:
    """Merge the spilled chunks into the final arrays (term-major, passages ascending in each term)."""
    art_group = _duplicate_groups(parts, spill)
    vocab = parts.vocab
    # sort the vocabulary so a loaded index can look terms up by binary search
    terms = sorted(vocab, key=lambda t: t.encode("utf-8"))
    remap = np.empty(len(vocab), np.int64)
    remap[np.fromiter((vocab[t] for t in terms), np.int64, len(terms))] = np.arange(len(terms))
    vocab.clear()
    df = np.zeros(len(terms), np.int64)
    df[remap[: len(parts.df)]] = parts.df
    term_ptr = np.zeros(len(terms) + 1, np.int64)
    np.cumsum(df, out=term_ptr[1:])
    total = int(term_ptr[-1])
    post_doc = np.empty(total, np.int32)
    post_tf = np.empty(total, np.uint16)
    cursor = term_ptr[:-1].copy()
    for lo, hi in parts.runs:
        term = spill.read("term", np.int32, lo, hi)
        if not len(term):
            continue
        starts = np.flatnonzero(np.concatenate(([True], term[1:] != term[:-1])))
        counts = np.diff(np.append(starts, len(term)))
        mapped = remap[term[starts]]
        del term
        dest = np.repeat(cursor[mapped] - starts, counts) + np.arange(hi - lo)
        post_doc[dest] = spill.read("doc", np.int32, lo, hi)
        post_tf[dest] = spill.read("tf", np.uint16, lo, hi)
        cursor[mapped] += counts
    per_doc = {
        name: np.frombuffer(values, np.int64 if values.typecode == "q" else np.int32).copy()
        for name, values in parts.per_doc.items()
    }
    lengths = per_doc["doc_len"]
    n = len(lengths)
    avgdl = float(lengths.sum()) / n
    idf = _idf_table(variant, df, n, epsilon)
    post_w = np.empty(total, np.float32)
    term_ub = np.empty(len(terms), np.float64)
    _postings_weights(
        _VARIANT_CODE[variant],
        term_ptr,
        post_doc,
        post_tf,
        idf,
        lengths,
        avgdl,
        float(k1),
        float(b),
        float(delta),
        post_w,
        term_ub,
    )
    # float32 rounding: keep the bounds safely above any stored weight
    term_ub = term_ub * (1 + 1e-6) + 1e-9
    term_blob, term_off = _blob(terms)
    del terms
    art_day = np.frombuffer(parts.art_day, np.int32)
    arrays = {
        "term_ptr": term_ptr,
        "term_idf": idf,
        "term_ub": term_ub,
        "term_blob": term_blob,
        "term_off": term_off,
        "post_doc": post_doc,
        "post_w": post_w,
        "post_tf": post_tf,
        **per_doc,
        "doc_day": art_day[per_doc["doc_article"]],
        "art_group": art_group,
        "art_blob": np.frombuffer(bytes(parts.art_blob), np.uint8),
        "art_off": np.frombuffer(parts.art_off, np.int64).copy(),
    }
    return arrays, avgdl


# ---------------------------------------------------------------------------------------------
# the index
# ---------------------------------------------------------------------------------------------


class BM25Index:
    """Passages ranked by BM25; immutable once built, safe to search from many threads."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        params: dict,
        analyzer: Analyzer,
        layout: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.analyzer = analyzer
        self._a = arrays
        # The passages' sentences and words (retrieval.layout), when kept with the index.
        self._layout_arrays = layout
        self._layouts = Layouts(layout) if layout is not None else None
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
        self._idf_cache: dict[str, float] = {}  # each question asks for its terms' idf a few dozen times
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
        chunk_passages: int = BUILD_CHUNK,
        word_cache: int = WORD_CACHE,
        layout: bool = True,
        layout_max_words: int = LAYOUT_MAX_WORDS,
        workers: int = 0,
    ) -> BM25Index:
        """Index ``docs`` (read once, in order) in bounded memory: the postings of each ``chunk_passages``
        passages are sorted and spilled to a temporary folder, then merged into the final arrays, so the
        build holds the finished index plus one chunk, whatever the number of passages. The result does
        not depend on ``chunk_passages`` or ``word_cache``.

        ``layout``: keep each passage's sentences and word spans with the index (retrieval.layout), so that
        quotes need not analyse passages again. Layouts are held in memory until the end of the build, so an
        archive of more than ``layout_max_words`` words is indexed without them (its quotes analyse their
        passages as they go) and the build's memory stays bounded.

        ``workers``: worker processes that analyse the passages of a build without layouts, beside this one
        (``retrieval.workers``); the index is the same with any number."""
        if variant not in VARIANTS:
            raise ValueError(f"unknown BM25 variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        if delta is None:
            delta = 1.0 if variant == "plus" else 0.5
        layouts = LayoutBuilder(analyzer) if layout else None
        with _Spill() as spill:
            parts = _collect(
                docs,
                analyzer,
                spill,
                progress,
                include_title,
                max(1, chunk_passages),
                word_cache,
                layouts,
                layout_max_words,
                workers,
            )
            layouts = parts.layouts
            ranks = None
            if layouts is not None:  # the index numbers terms in their sorted order
                ranks = {t: n for n, t in enumerate(sorted(parts.vocab, key=lambda t: t.encode("utf-8")))}
            arrays, avgdl = _finish(parts, spill, variant, k1, b, delta, epsilon)
        layout_arrays = None
        if layouts is not None and ranks is not None:
            number_of = ranks.__getitem__
            layout_arrays = layouts.finish(lambda ts: np.fromiter(map(number_of, ts), np.int64, len(ts)))
            del layouts, ranks
        params = {
            "variant": variant,
            "k1": float(k1),
            "b": float(b),
            "delta": float(delta),
            "epsilon": float(epsilon),
            "include_title": bool(include_title),
            "avgdl": avgdl,
            "min_coverage": float(min_coverage),
        }
        return cls(arrays, params, analyzer, layout_arrays)

    # -- persistence ----------------------------------------------------------------------
    def _manifest(self) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "params": {
                "variant": self.variant,
                "k1": self.k1,
                "b": self.b,
                "delta": self.delta,
                "epsilon": self.epsilon,
                "include_title": self.include_title,
                "avgdl": self.avgdl,
                "min_coverage": self.min_coverage,
            },
            "analyzer": {"language": self.analyzer.language},
            "counts": {
                "passages": self.n_passages,
                "articles": self.n_articles,
                "terms": self.n_terms,
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
            if self._layout_arrays is not None:
                save_layout(tmp, self._layout_arrays)
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
                    raise IndexLoadError(
                        f"index array {name}.npy does not match the manifest (corrupt index)"
                    )
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
            raise IndexLoadError(
                f"index at {directory} holds out-of-range numbers (corrupt index); rebuild it"
            )
        index = cls(arrays, params, analyzer, load_layout(directory, n))
        index._warm()
        return index

    def _warm(self) -> None:
        """Load the compiled kernels for this index's (read-only, memory-mapped) array types, so
        the first question is as fast as the others."""
        a = self._a
        acc, touched, fresh = self._buffers()
        none = np.zeros(0, np.int64)
        for use_range in (False, True):
            _search_kernel(
                self._code,
                a["term_ptr"],
                a["post_doc"],
                a["post_w"],
                a["post_tf"],
                a["term_idf"],
                a["doc_len"],
                self.avgdl,
                self.k1,
                self.b,
                self.delta,
                none,
                np.zeros(0),
                np.zeros(0),
                16,
                acc,
                touched,
                fresh,
                a["doc_day"],
                0,
                0,
                use_range,
            )
        _terms_held(a["term_ptr"], a["post_doc"], none, np.zeros(1, np.int64), np.zeros(0, np.int32), none)
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
        cache = self._idf_cache
        value = cache.get(term)
        if value is None:
            t = self._term_id(term)
            value = float(self._a["term_idf"][t]) if t >= 0 else 0.0
            if len(cache) >= 200_000:
                cache.clear()
            cache[term] = value
        return value

    def terms_in_articles(self, terms: Iterable[str], article_ids: Iterable[str]) -> dict[str, set[str]]:
        """Which of ``terms`` each article holds in any passage or its title, from the postings alone; a
        year counts as held by an article published in it."""
        ids = list(dict.fromkeys(article_ids))
        out: dict[str, set[str]] = {a: set() for a in ids}
        numbers = self._article_numbers()
        known = [(a, numbers[a]) for a in ids if a in numbers]
        if not known:
            return out
        ptr, order = self._article_docs()
        a = self._a
        terms = list(dict.fromkeys(terms))
        known_terms = [(term, t) for term in terms if (t := self._term_id(term)) >= 0]
        if known_terms:
            held = _terms_held(
                a["term_ptr"],
                a["post_doc"],
                np.array([t for _, t in known_terms], np.int64),
                ptr,
                order,
                np.array([n for _, n in known], np.int64),
            )
            for (term, _), row in zip(known_terms, held.tolist(), strict=True):
                for (article_id, _), hit in zip(known, row, strict=True):
                    if hit:
                        out[article_id].add(term)
        years = {t for t in terms if _YEAR.fullmatch(t)}
        if years:
            for article_id, n in known:
                if ptr[n] == ptr[n + 1]:
                    continue  # an article without passages
                day = int(a["doc_day"][order[ptr[n]]])
                if day != _UNDATED and str((_EPOCH + datetime.timedelta(days=day)).year) in years:
                    out[article_id].add(str((_EPOCH + datetime.timedelta(days=day)).year))
        return out

    def _article_names(self) -> list[str]:
        """Every article's id, by article number (decoded once: each question's hits name theirs)."""
        names = getattr(self, "_names", None)
        if names is None:
            blob = bytes(self._a["art_blob"])
            off = self._a["art_off"].tolist()
            names = self._names = [blob[off[i] : off[i + 1]].decode("utf-8") for i in range(self.n_articles)]
        return names

    def _article_numbers(self) -> dict[str, int]:
        numbers = getattr(self, "_numbers", None)
        if numbers is None:
            numbers = self._numbers = {name: i for i, name in enumerate(self._article_names())}
        return numbers

    def _article_docs(self) -> tuple[np.ndarray, np.ndarray]:
        """Passages of each article: ``order[ptr[a]:ptr[a + 1]]`` (ascending)."""
        cached = getattr(self, "_docs_by_article", None)
        if cached is None:
            articles = np.asarray(self._a["doc_article"])
            order = np.argsort(articles, kind="stable").astype(np.int32)
            ptr = np.searchsorted(articles[order], np.arange(self.n_articles + 1)).astype(np.int64)
            cached = self._docs_by_article = (ptr, order)
        return cached

    def _article_range(self, article_id: str) -> tuple[int, int] | None:
        """Where the article's passages are in ``_article_docs()``'s order (``order[start:end]``, its
        ordinals in turn); None when it shows no passage in this index."""
        article = self._article_numbers().get(article_id)
        if article is None:
            return None
        ptr, _ = self._article_docs()
        return int(ptr[article]), int(ptr[article + 1])

    def _doc_of(self, article_id: str, ordinal: int) -> int | None:
        """The passage number of the article's passage ``ordinal``; None when it has no passage there."""
        found = self._article_range(article_id)
        if found is None or not 0 <= ordinal < found[1] - found[0]:
            return None
        _, order = self._article_docs()
        return int(order[found[0] + ordinal])

    def passage_ids_of(self, article_ids: Iterable[str]) -> dict[str, list[int]]:
        """article id -> the store's ids of its passages, in order, for those of ``article_ids`` that show
        passages in this index (in the order given)."""
        _, order = self._article_docs()
        pids = self._a["doc_pid"]
        out: dict[str, list[int]] = {}
        for article_id in article_ids:
            found = self._article_range(article_id)
            if found is not None and article_id not in out:
                out[article_id] = pids[order[found[0] : found[1]]].tolist()
        return out

    def keep_layouts(self, passages: dict[str, list[tuple[int, str]]]) -> int:
        """Read ahead the stored layouts of ``passages`` (article id -> (ordinal, text) of its passages, the
        first articles first), as far as they are kept; returns how many (0: this index keeps no layouts)."""
        if self._layouts is None:
            return 0
        docs = (
            (doc, text)
            for article_id, texts in passages.items()
            for ordinal, text in texts
            if (doc := self._doc_of(article_id, ordinal)) is not None
        )
        return self._layouts.keep(docs)

    def term_numbers(self, terms: Iterable[str]) -> dict[int, str]:
        """term number -> term, for those of ``terms`` the index knows."""
        out = {}
        for term in terms:
            t = self._term_id(term)
            if t >= 0:
                out[t] = term
        return out

    def passage_sentences(
        self, article_id: str, ordinal: int, text: str, terms: Mapping[int, str]
    ) -> Sentences | None:
        """The sentences of the article's passage ``ordinal`` (whose text is ``text``) with the words of
        ``terms`` (from ``term_numbers``) in each, from the layout kept with the index; None when the index
        keeps no layout or its passage there is not this text (an article's passages are in passage id
        order, which is their order in the article)."""
        if self._layouts is None:
            return None
        doc = self._doc_of(article_id, ordinal)
        return None if doc is None else self._layouts.sentences(doc, text, terms)

    def vocabulary(self) -> list[str]:
        """Every term of the index, in the index's (byte) order; ``passage_counts`` matches it."""
        blob = bytes(self._a["term_blob"])
        off = self._a["term_off"].tolist()
        return [blob[off[i] : off[i + 1]].decode("utf-8") for i in range(self.n_terms)]

    @property
    def passage_counts(self) -> np.ndarray:
        """How many passages hold each term (document frequency), in vocabulary order."""
        return self._df

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
            s, _ = _rescore(
                self._code,
                a["term_ptr"],
                a["post_doc"],
                a["post_tf"],
                a["term_idf"],
                a["doc_len"],
                self.avgdl,
                self.k1,
                self.b,
                self.delta,
                np.array([t], np.int64),
                np.ones(1),
                docs,
            )
            out[docs] += s
        return out

    def _query(
        self, question: str | Mapping[str, float]
    ) -> tuple[list[int], list[float], list[str], float, float]:
        """Distinct known query terms (ids, multiplicities, strings), the constant score part and
        the coverage denominator. ``question`` is text, or analyzed terms with their weights."""
        counts: dict[str, float] = {}
        if isinstance(question, str):
            for term in self.analyzer.terms(question):
                counts[term] = counts.get(term, 0) + 1
        else:
            counts = {term: float(w) for term, w in question.items() if w > 0}
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
                denom += w * min(count, 1.0)
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
        question: str | Mapping[str, float],
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
        ub = a["term_ub"][ids].tolist()  # each term's upper bound, read once
        order = sorted(range(len(ids)), key=lambda i: -ub[i] * mult[i])
        q_terms = np.array([ids[i] for i in order], np.int64)
        q_mult = np.array([mult[i] for i in order], np.float64)
        q_ub = np.array([ub[i] for i in order], np.float64)
        use_range = since is not None or until is not None
        day_lo = (since - _EPOCH).days if since is not None else _UNDATED + 1
        day_hi = (until - _EPOCH).days if until is not None else _LATEST
        wanted = offset + k
        n_top = max(16, 2 * wanted)
        acc, touched, fresh = self._buffers()
        while True:
            docs, exact, covered, n_touched, n_full = _search_kernel(
                self._code,
                a["term_ptr"],
                a["post_doc"],
                a["post_w"],
                a["post_tf"],
                a["term_idf"],
                a["doc_len"],
                self.avgdl,
                self.k1,
                self.b,
                self.delta,
                q_terms,
                q_mult,
                q_ub,
                n_top,
                acc,
                touched,
                fresh,
                a["doc_day"],
                day_lo,
                day_hi,
                use_range,
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
        shown = picked[offset:wanted]
        at = docs[shown]
        names_of = self._article_names()
        hits = [
            Hit(passage_id=pid, article_id=names_of[article], score=score, coverage=coverages[i])
            for pid, article, score, i in zip(
                a["doc_pid"][at].tolist(),
                a["doc_article"][at].tolist(),
                (exact[shown] + base).tolist(),
                shown,
                strict=True,
            )
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
            if chosen_article.setdefault(groups[i], art) != art:
                continue
            count = used.get(art, 0)
            if count >= per_article:
                continue
            used[art] = count + 1
            picked.append(i)
            if len(picked) >= wanted:
                break
        return picked
