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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.analyze import Analyzer, fold
from retrieval.kernels import _find_term, _postings_weights, _rescore, _search_kernel
from retrieval.layout import LayoutBuilder, Layouts, Sentences, load_layout, save_layout

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
        layout: bool = True,
    ) -> BM25Index:
        """``layout``: keep each passage's sentences and word spans with the index (retrieval.layout), so
        that quotes need not analyse passages again."""
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
        layouts = LayoutBuilder(analyzer) if layout else None
        # With a layout, its builder analyses each passage (recording its sentences and word spans) and gives
        # the same terms as analyzer.terms.
        terms_of_text = layouts.add if layouts is not None else terms_of
        setdefault = vocab.setdefault
        n = 0
        for doc in docs:
            art = art_index.get(doc.article_id)
            if art is None:
                art = len(art_ids)
                art_index[doc.article_id] = art
                art_ids.append(doc.article_id)
                art_title_ids.append(
                    [setdefault(t, len(vocab)) for t in terms_of(doc.title)] if include_title else []
                )
                art_day.append(_day_number(doc.published))
                art_dup.append(doc.dup_key)
                art_title.append(doc.title)
                art_first.append(None)
            ids = [setdefault(t, len(vocab)) for t in terms_of_text(doc.text)]
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
        layout_arrays = None
        if layouts is not None:
            number_of = vocab.__getitem__
            layout_arrays = layouts.finish(
                lambda ts: remap[np.fromiter(map(number_of, ts), np.int64, len(ts))]
            )
            del layouts
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
            "term_ptr": term_ptr,
            "term_idf": idf,
            "term_ub": term_ub,
            "term_blob": term_blob,
            "term_off": term_off,
            "post_doc": post_doc,
            "post_w": post_w,
            "post_tf": post_tf,
            "doc_len": lengths,
            "doc_article": doc_article_arr,
            "doc_pid": np.asarray(doc_pid, np.int64),
            "doc_day": art_day_arr[doc_article_arr],
            "art_group": art_group,
            "art_blob": art_blob,
            "art_off": art_off,
        }
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
        groups = [order[ptr[n] : ptr[n + 1]] for _, n in known]
        docs = np.concatenate(groups)
        starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
        a = self._a
        for term in dict.fromkeys(terms):
            t = self._term_id(term)
            if t < 0 or not len(docs):
                continue
            postings = a["post_doc"][int(a["term_ptr"][t]) : int(a["term_ptr"][t + 1])]
            at = np.minimum(np.searchsorted(postings, docs), len(postings) - 1)
            found = np.logical_or.reduceat(postings[at] == docs, starts)
            for (article_id, _), hit in zip(known, found.tolist(), strict=True):
                if hit:
                    out[article_id].add(term)
        years = {t for t in terms if _YEAR.fullmatch(t)}
        if years:
            for (article_id, _), group in zip(known, groups, strict=True):
                day = int(a["doc_day"][group[0]])
                if day != _UNDATED and str((_EPOCH + datetime.timedelta(days=day)).year) in years:
                    out[article_id].add(str((_EPOCH + datetime.timedelta(days=day)).year))
        return out

    def _article_numbers(self) -> dict[str, int]:
        numbers = getattr(self, "_numbers", None)
        if numbers is None:
            blob = bytes(self._a["art_blob"])
            off = self._a["art_off"].tolist()
            numbers = {blob[off[i] : off[i + 1]].decode("utf-8"): i for i in range(self.n_articles)}
            self._numbers = numbers
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
        if self._layouts is None or ordinal < 0:
            return None
        article = self._article_numbers().get(article_id)
        if article is None:
            return None
        ptr, order = self._article_docs()
        at = int(ptr[article]) + ordinal
        if at >= int(ptr[article + 1]):
            return None
        return self._layouts.sentences(int(order[at]), text, terms)

    def vocabulary(self) -> list[str]:
        """Every term of the index, in the index's (byte) order; ``passage_counts`` matches it."""
        blob = bytes(self._a["term_blob"])
        off = self._a["term_off"].tolist()
        return [blob[off[i] : off[i + 1]].decode("utf-8") for i in range(self.n_terms)]

    @property
    def passage_counts(self) -> np.ndarray:
        """How many passages hold each term (document frequency), in vocabulary order."""
        return self._df

    def article_id(self, article: int) -> str:
        off = self._a["art_off"]
        return bytes(self._a["art_blob"][off[article] : off[article + 1]]).decode("utf-8")

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
        ub = a["term_ub"]
        order = sorted(range(len(ids)), key=lambda i: -float(ub[ids[i]]) * mult[i])
        q_terms = np.array([ids[i] for i in order], np.int64)
        q_mult = np.array([mult[i] for i in order], np.float64)
        q_ub = np.array([float(ub[ids[i]]) for i in order], np.float64)
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
