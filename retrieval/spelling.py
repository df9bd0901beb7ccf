"""Correct question words the archive has never seen to a near word it has ("kuznetsva" -> "kuznetsova").

Corrections work on analyzed terms (folded and stemmed, as the index holds them), against the index's
own vocabulary: a term unknown to the archive is replaced by the known term one edit away (two for
long words; swapping two neighbouring letters is one edit) that occurs in the most passages. Numbers are never corrected ("2022" is not a typo of
"2002"), nor are short words, where one edit makes another word. Edit distances come from RapidFuzz.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

__all__ = ["Correction", "Speller"]

MIN_CHARS_ONE_EDIT = 4
MIN_CHARS_TWO_EDITS = 7
MIN_PASSAGES = 2  # a correction must be a word of at least this many passages, not another typo


@dataclass(frozen=True, slots=True)
class Correction:
    term: str  # as analyzed from the question
    corrected: str  # the known term searched instead


class Speller:
    """Nearest known terms for unknown ones. ``vocabulary`` and ``passages_with`` come from the index."""

    def __init__(self, vocabulary: Sequence[str], passages_with: np.ndarray) -> None:
        keep = np.flatnonzero(np.asarray(passages_with) >= MIN_PASSAGES)
        self._df = {t: int(passages_with[i]) for i in keep.tolist() if not _has_digit(t := vocabulary[i])}
        # Terms by length: a word is only compared with words at most two letters longer or shorter.
        self._by_length: dict[int, list[str]] = {}
        for term in self._df:
            self._by_length.setdefault(len(term), []).append(term)
        self._cache: dict[str, str | None] = {}
        self._near_lengths: dict[tuple[int, int], list[str]] = {}
        self._masks: dict[tuple[int, int], np.ndarray] = {}  # the letters of each of _near_lengths' words

    def correct(self, term: str) -> str | None:
        """The known term to search instead of the unknown ``term``, or None."""
        if term in self._cache:
            return self._cache[term]
        found = self._nearest(term)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[term] = found
        return found

    def _nearest(self, term: str) -> str | None:
        if _has_digit(term) or len(term) < MIN_CHARS_ONE_EDIT or not term.isalpha():
            return None
        limit = 2 if len(term) >= MIN_CHARS_TWO_EDITS else 1
        near = self._of_length(len(term), limit)
        # Only words that could be within ``limit`` edits are measured: each edit removes at most one of the
        # letters a word has that the other lacks, and adds at most one (the letters as bits of a mask).
        # The survivors keep their order, so the nearest (and their ties) are the same as over all of them.
        masks = self._masks[(len(term), limit)]
        mask = np.uint64(_letters(term))
        close = (_popcount(masks & ~mask) <= limit) & (_popcount(mask & ~masks) <= limit)
        near = [near[i] for i in np.flatnonzero(close).tolist()]
        matches = process.extract(term, near, scorer=OSA.distance, score_cutoff=limit, limit=20)
        if not matches:
            return None
        best = min(d for _, d, _ in matches)
        # Among the nearest, the one most passages use; the first letter rarely is the typo.
        ranked = sorted(
            (m for m, d, _ in matches if d == best),
            key=lambda m: (m[0] != term[0], -self._df.get(m, 0), m),
        )
        return ranked[0]

    def _of_length(self, length: int, limit: int) -> list[str]:
        """The known terms within ``limit`` letters of ``length`` (built once per length)."""
        key = (length, limit)
        found = self._near_lengths.get(key)
        if found is None:
            found = [t for n in range(length - limit, length + limit + 1) for t in self._by_length.get(n, ())]
            # The masks first: a search thread that finds the words must find their masks too.
            self._masks[key] = _letter_masks(found)
            self._near_lengths[key] = found
        return found


def _has_digit(term: str) -> bool:
    return any(ch.isdigit() for ch in term)


def _letters(term: str) -> int:
    """The letters of ``term`` as bits (two letters may share a bit: the test it serves only gets weaker)."""
    mask = 0
    for ch in term:
        mask |= 1 << (ord(ch) & 63)
    return mask


def _letter_masks(terms: list[str]) -> np.ndarray:
    """``_letters`` of each of ``terms``, worked out for all of them at once."""
    if not terms:
        return np.zeros(0, np.uint64)
    codes = np.frombuffer("".join(terms).encode("utf-32-le", "surrogatepass"), np.uint32)
    bits = np.left_shift(np.uint64(1), (codes & 63).astype(np.uint64))
    lengths = np.fromiter(map(len, terms), np.int64, len(terms))
    if not lengths.all():
        return np.fromiter(map(_letters, terms), np.uint64, len(terms))
    return np.bitwise_or.reduceat(bits, np.concatenate(([0], np.cumsum(lengths)[:-1])))


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(values)
    return np.unpackbits(values.view(np.uint8)).reshape(len(values), 64).sum(axis=1)
