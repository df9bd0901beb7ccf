"""Bounded caches: a dict kept under a number of entries by dropping its older half (dicts keep insertion order),
so that what recent questions used stays."""

from __future__ import annotations

import itertools

__all__ = ["KEPT_AHEAD", "make_room"]

# What a search process reads ahead fills a bounded cache up to this share of its bound, so that what the next
# questions read is added beside it before the older half is dropped.
KEPT_AHEAD = 0.75


def make_room(cache: dict, limit: int) -> None:
    """Drop the older half of ``cache`` when it holds ``limit`` entries or more."""
    if len(cache) >= limit:
        for key in list(itertools.islice(cache, len(cache) // 2)):
            cache.pop(key, None)  # another search thread may have dropped it already
