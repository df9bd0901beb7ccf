"""Passage layouts kept with the index: each passage's sentences and the character span and term of each of
its words, so that choosing a quote looks its question's terms up instead of analysing passages again.

* :func:`passage_layout` is the one definition of a layout (used when building and when none is stored).
* :class:`LayoutBuilder` collects the layouts of the passages in index order while the index is built
  (``add`` returns the passage's terms, so the build analyses each passage once) and turns them into arrays
  (``finish``) that are saved beside the index's (``save_layout``), memory-mapped when it loads
  (``load_layout``), and versioned on their own (``LAYOUT_VERSION``): an index without them, or with another
  version, still serves, and quotes then analyse their passages as they go.
* :class:`Layouts` answers for one passage, after checking that the stored layout is of that exact text
  (its length and CRC-32): anything else gets None and is analysed afresh.

Arrays (``n`` passages in index order; a passage's tokens and sentences are contiguous):

* ``lay_tok_ptr`` (int64, n + 1) delimits each passage's words in ``lay_tok_start``, ``lay_tok_end``
  (int32 character offsets in the passage) and ``lay_tok_term`` (int32 term number in the index's
  vocabulary);
* ``lay_sen_ptr`` (int64, n + 1) delimits each passage's sentences in ``lay_sen_start``, ``lay_sen_end``
  (int32 character offsets) and ``lay_sen_lo``, ``lay_sen_hi`` (int64: the sentence's words are
  ``lay_tok_*[lo:hi]``);
* ``lay_len`` (int32, n) and ``lay_crc`` (uint32, n): the passage text's length and the CRC-32 of its UTF-8.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from retrieval.analyze import _TOKEN, Analyzer
from retrieval.bounded import KEPT_AHEAD, make_room
from retrieval.passages import split_sentences

__all__ = [
    "LAYOUT_VERSION",
    "LayoutBuilder",
    "Layouts",
    "load_layout",
    "passage_layout",
    "save_layout",
]

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1
LAYOUT_FILE = "layout.json"
_ARRAYS = {
    "lay_tok_ptr": np.int64,
    "lay_tok_start": np.int32,
    "lay_tok_end": np.int32,
    "lay_tok_term": np.int32,
    "lay_sen_ptr": np.int64,
    "lay_sen_start": np.int32,
    "lay_sen_end": np.int32,
    "lay_sen_lo": np.int64,
    "lay_sen_hi": np.int64,
    "lay_len": np.int32,
    "lay_crc": np.uint32,
}
_MAX_OFFSET = np.iinfo(np.int32).max
# Passages whose layout is kept in memory (about 2 KB each over BBC News: a few tuples of numbers, and the
# words' term numbers and offsets as bytes, 4 a number).
_CACHE_LIMIT = 16_384

Spans = list[tuple[int, int, str]]
# A passage's sentences: (start, end, the question's terms in it as (start, end, term) relative to the sentence)
Sentences = list[tuple[int, int, list[tuple[int, int, str]]]]


def passage_layout(text: str, analyzer: Analyzer) -> tuple[list[tuple[int, int, int, int]], Spans]:
    """The sentences of ``text`` as (start, end, first word, word after the last) and its words as
    (start, end, term). A text without sentence ends is one sentence; a blank one has none."""
    spans = analyzer.term_spans(text)
    bounds = [(s, e) for s, e in split_sentences(text) if e > s] or ([(0, len(text))] if text.strip() else [])
    out = []
    k = 0  # spans and sentences are both in text order: one pass over the spans
    for s, e in bounds:
        while k < len(spans) and spans[k][0] < s:
            k += 1
        lo = k
        while k < len(spans) and spans[k][1] <= e:
            k += 1
        out.append((s, e, lo, k))
    return out, spans


_INT32_MIN, _INT32_MAX = int(np.iinfo(np.int32).min), int(np.iinfo(np.int32).max)


def _int32_bytes(values: np.ndarray) -> bytes:
    """``values`` as native int32 bytes (what ``Layouts.sentences`` searches for a term's number)."""
    return np.ascontiguousarray(values, np.dtype(np.int32).newbyteorder("=")).tobytes()


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


class LayoutBuilder:
    """Collects passage layouts in index order, in compact arrays (about 14 bytes a word while building).

    Each passage is read once, whitespace chunk by chunk, and each distinct chunk is analysed once (its words'
    offsets inside it, terms and the builder's term numbers are cached). A word never spans whitespace and a
    sentence starts and ends at whitespace, so a sentence's words are those of the chunks inside it: the same
    layout as :func:`passage_layout` (tests compare the two)."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._vocab: dict[str, int] = {}  # the builder's own term numbers, mapped to the index's in finish()
        self._chunks: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        self._words = array("i")  # per word: start and end inside its chunk, the builder's term number
        self._chunk = array("i")  # per chunk holding words: where it starts in its passage, how many words
        self._tok_ptr = array("q", [0])
        self._sen = array("i")  # per sentence: start, end, its first word and the word after its last
        self._sen_ptr = array("q", [0])
        self._len = array("q")
        self._crc = array("Q")

    @property
    def words(self) -> int:
        """Words recorded so far."""
        return len(self._words) // 3

    def add(self, text: str) -> list[str]:
        """Record the next passage's layout; returns its terms in order (``analyzer.terms(text)``)."""
        get = self._chunks.get
        terms: list[str] = []
        words = self._words
        bases: list[int] = []
        counts: list[int] = []
        find = text.find
        cursor = 0
        for chunk in text.split():
            base = find(chunk, cursor)
            cursor = base + len(chunk)
            found = get(chunk)
            if found is None:
                found = self._analyse(chunk)
            if found[0]:
                terms.extend(found[0])
                words.extend(found[1])
                bases.append(base)
                counts.append(len(found[0]))
        self._tok_ptr.append(len(words) // 3)
        for pair in zip(bases, counts, strict=True):
            self._chunk.extend(pair)
        before = [0, *itertools.accumulate(counts)]  # words before each chunk
        bounds = [(s, e) for s, e in split_sentences(text) if e > s] or (
            [(0, len(text))] if text.strip() else []
        )
        for s, e in bounds:
            self._sen.extend(
                (s, e, before[bisect.bisect_left(bases, s)], before[bisect.bisect_left(bases, e)])
            )
        self._sen_ptr.append(len(self._sen) // 4)
        self._len.append(len(text))
        self._crc.append(_crc(text))
        return terms

    def _analyse(self, chunk: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
        token_spans = self.analyzer._token_spans
        spans = [
            (m.start() + s, m.start() + e, t)
            for m in _TOKEN.finditer(chunk)
            for s, e, t in token_spans(m.group())
        ]
        vocab = self._vocab
        found = (
            tuple(t for _, _, t in spans),
            tuple(x for s, e, t in spans for x in (s, e, vocab.setdefault(t, len(vocab)))),
        )
        if len(self._chunks) >= 200_000:
            self._chunks.clear()
        self._chunks[chunk] = found
        return found

    def finish(self, term_numbers: Callable[[list[str]], np.ndarray]) -> dict[str, np.ndarray]:
        """The arrays, with each word's term numbered as the index numbers it (``term_numbers`` maps a list
        of terms to their numbers in the index's vocabulary)."""
        local = list(self._vocab)
        self._chunks.clear()
        numbers = np.asarray(term_numbers(local), np.int32) if local else np.zeros(0, np.int32)
        per_word = _ints(self._words, np.int32).reshape(-1, 3)
        per_chunk = _ints(self._chunk, np.int32).reshape(-1, 2)
        sentences = _ints(self._sen, np.int32).reshape(-1, 4)
        tok_ptr, sen_ptr = _ints(self._tok_ptr, np.int64), _ints(self._sen_ptr, np.int64)
        chunk_base = np.repeat(
            per_chunk[:, 0], per_chunk[:, 1]
        )  # where each word's chunk starts in its passage
        first_word = np.repeat(tok_ptr[:-1], np.diff(sen_ptr))  # each sentence's passage's first word
        arrays = {
            "lay_tok_ptr": tok_ptr,
            "lay_tok_start": chunk_base + per_word[:, 0],
            "lay_tok_end": chunk_base + per_word[:, 1],
            "lay_tok_term": numbers[per_word[:, 2]] if len(per_word) else np.zeros(0, np.int32),
            "lay_sen_ptr": sen_ptr,
            "lay_sen_start": sentences[:, 0],
            "lay_sen_end": sentences[:, 1],
            "lay_sen_lo": first_word + sentences[:, 2],
            "lay_sen_hi": first_word + sentences[:, 3],
            "lay_len": _ints(self._len, np.int64),
            "lay_crc": _ints(self._crc, np.uint64),
        }
        if len(arrays["lay_len"]) and int(arrays["lay_len"].max()) > _MAX_OFFSET:
            raise ValueError("a passage too long for its layout")
        return {name: np.ascontiguousarray(arrays[name], dtype) for name, dtype in _ARRAYS.items()}


def _ints(values: array, dtype: type) -> np.ndarray:
    return np.frombuffer(values, dtype) if len(values) else np.zeros(0, dtype)


def save_layout(directory: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write the layout arrays into an index folder being written (beside the index's own arrays)."""
    for name in _ARRAYS:
        np.save(directory / f"{name}.npy", np.ascontiguousarray(arrays[name]), allow_pickle=False)
    manifest = {
        "version": LAYOUT_VERSION,
        "arrays": {name: [str(arrays[name].dtype), int(len(arrays[name]))] for name in _ARRAYS},
    }
    (directory / LAYOUT_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def load_layout(directory: Path, n_passages: int) -> dict[str, np.ndarray] | None:
    """The layout arrays saved with an index (memory-mapped), or None when there are none, they are of
    another version, or they do not hold together (the quotes then analyse their passages)."""
    path = Path(directory) / LAYOUT_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("version") != LAYOUT_VERSION:
            return None
        arrays = {}
        for name, dtype in _ARRAYS.items():
            arr = np.load(Path(directory) / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if arr.dtype != dtype or arr.ndim != 1 or [str(arr.dtype), len(arr)] != manifest["arrays"][name]:
                raise ValueError(f"{name}.npy does not match {LAYOUT_FILE}")
            arrays[name] = np.asarray(arr)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning(
            "the passage layouts at %s cannot be used (%s); quotes will analyse passages", directory, exc
        )
        return None
    if not _consistent(arrays, n_passages):
        log.warning("the passage layouts at %s are inconsistent; quotes will analyse passages", directory)
        return None
    return arrays


def _ascending_from_zero(ptr: np.ndarray, end: int) -> bool:
    return len(ptr) > 0 and int(ptr[0]) == 0 and int(ptr[-1]) == end and bool(np.all(np.diff(ptr) >= 0))


def _consistent(a: Mapping[str, np.ndarray], n: int) -> bool:
    tokens, sentences = len(a["lay_tok_term"]), len(a["lay_sen_start"])
    lo, hi = a["lay_sen_lo"], a["lay_sen_hi"]
    return (
        len(a["lay_tok_ptr"]) == n + 1
        and len(a["lay_sen_ptr"]) == n + 1
        and len(a["lay_len"]) == n
        and len(a["lay_crc"]) == n
        and len(a["lay_tok_start"]) == tokens
        and len(a["lay_tok_end"]) == tokens
        and all(len(a[x]) == sentences for x in ("lay_sen_end", "lay_sen_lo", "lay_sen_hi"))
        and _ascending_from_zero(a["lay_tok_ptr"], tokens)
        and _ascending_from_zero(a["lay_sen_ptr"], sentences)
        and (sentences == 0 or (int(lo.min()) >= 0 and int(hi.max()) <= tokens and bool(np.all(lo <= hi))))
        and _within(a["lay_tok_start"], a["lay_tok_end"], a["lay_len"])
        and _within(a["lay_sen_start"], a["lay_sen_end"], a["lay_len"])
    )


def _within(starts: np.ndarray, ends: np.ndarray, lengths: np.ndarray) -> bool:
    """Spans that start at 0 or later and end within the longest passage (a cheap check against damage; each
    passage's own text is checked when it is read)."""
    if not len(starts):
        return True
    return int(starts.min()) >= 0 and int(ends.max()) <= (int(lengths.max()) if len(lengths) else 0)


class Layouts:
    """The stored layouts of an index's passages, read per passage."""

    def __init__(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._a = arrays
        self._cache: dict[int, tuple] = {}
        self._checked: dict[int, str] = {}  # passage -> the text last found to be the one of its layout

    def keep(self, passages: Iterable[tuple[int, str]]) -> int:
        """Read ahead the layouts of ``passages`` (passage number, its text) and check them against their
        texts, up to ``KEPT_AHEAD`` of what is kept; returns how many were kept."""
        kept = 0
        for doc, text in itertools.islice(passages, int(_CACHE_LIMIT * KEPT_AHEAD)):
            found = self._read(doc)
            if found is not None and self._made_from(doc, text, found):
                kept += 1
        return kept

    def sentences(self, doc: int, text: str, terms: Mapping[int, str]) -> Sentences | None:
        """The sentences of passage ``doc`` with the words of ``terms`` (term number -> term) in each, or
        None when ``text`` is not the text the layout was made from."""
        found = self._read(doc)
        if found is None or not self._made_from(doc, text, found):
            return None
        _, _, starts, ends, los, his, first, ids, tok_start, tok_end = found
        out: Sentences = [(s, e, []) for s, e in zip(starts, ends, strict=True)]
        # The words that are the question's terms: each term's number looked for in the passage's words (as
        # bytes, at whole-word offsets), then in order, each put in the sentence it is in (the last starting at
        # or before it, if it ends after it: a word between sentences is in none).
        hits = []
        find = ids.find
        for number, term in terms.items():
            if not _INT32_MIN <= number <= _INT32_MAX:
                continue  # no word has it
            pattern = number.to_bytes(4, sys.byteorder, signed=True)
            at = find(pattern)
            while at >= 0:
                if not at & 3:
                    hits.append((at >> 2, term))
                at = find(pattern, at + 1)
        if not hits:
            return out
        hits.sort()
        tok_start, tok_end = memoryview(tok_start).cast("i"), memoryview(tok_end).cast("i")
        for w, term in hits:
            k = first + w
            at = bisect.bisect_right(los, k) - 1
            if at >= 0 and k < his[at]:
                s, _, matches = out[at]
                matches.append((tok_start[w] - s, tok_end[w] - s, term))
        return out

    def _made_from(self, doc: int, text: str, found: tuple) -> bool:
        """Whether ``text`` is the text passage ``doc``'s layout was made from (its length and CRC-32). The text
        that passed is remembered: the next question's quotes compare it, without encoding it again."""
        checked = self._checked
        if checked.get(doc) == text:
            return True
        if found[0] != len(text) or found[1] != _crc(text):
            return False
        if len(checked) >= _CACHE_LIMIT:
            checked.clear()
        checked[doc] = text
        return True

    def _read(self, doc: int) -> tuple | None:
        """One passage's layout as tuples (a sentence's words as positions in the index's words, followed by
        the position of the passage's first word; its words' term numbers, start and end offsets as native
        int32 bytes), cached: the quotes of one question, and of the next ones, come back to the same passages.
        (Tuples of numbers and bytes, which the garbage collector stops walking once they have survived a
        collection.)"""
        found = self._cache.get(doc)
        if found is None:
            a = self._a
            if not 0 <= doc < len(a["lay_len"]):
                return None
            s_lo, s_hi = a["lay_sen_ptr"][doc : doc + 2].tolist()
            t_lo, t_hi = a["lay_tok_ptr"][doc : doc + 2].tolist()
            found = (
                int(a["lay_len"][doc]),
                int(a["lay_crc"][doc]),
                tuple(a["lay_sen_start"][s_lo:s_hi].tolist()),
                tuple(a["lay_sen_end"][s_lo:s_hi].tolist()),
                tuple(a["lay_sen_lo"][s_lo:s_hi].tolist()),
                tuple(a["lay_sen_hi"][s_lo:s_hi].tolist()),
                t_lo,
                _int32_bytes(a["lay_tok_term"][t_lo:t_hi]),
                _int32_bytes(a["lay_tok_start"][t_lo:t_hi]),
                _int32_bytes(a["lay_tok_end"][t_lo:t_hi]),
            )
            make_room(self._cache, _CACHE_LIMIT)
            self._cache[doc] = found
        return found

    @staticmethod
    def compute(text: str, analyzer: Analyzer, terms: Sequence[str] | Mapping[str, object]) -> Sentences:
        """The same as ``sentences`` for a passage without a stored layout, from the text itself."""
        sentences, spans = passage_layout(text, analyzer)
        return [
            (s, e, [(a - s, b - s, t) for a, b, t in spans[lo:hi] if t in terms])
            for s, e, lo, hi in sentences
        ]
