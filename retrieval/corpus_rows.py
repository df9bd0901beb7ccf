"""The rows every answer reads again, kept for one corpus version: articles, passage ordinals, passage texts.

Questions in a burst keep coming back to the same articles, and each answer read their rows from the store
(three round trips, a few dozen microseconds each). A :class:`CorpusRows` belongs to one snapshot
(``retrieval.service.Snapshot``): a reload swaps in a new snapshot with an empty one, so rows kept under one
corpus version are never served under another. Within a version the rows do not change (an ingest makes a new
version); what a question needs that is not kept yet is read in one query as before.

Each kind of row is kept up to a bound; past it the older half is dropped (dicts keep insertion order). At the
bounds the rows take about 8 MB (BBC News: some 600 bytes an article or a passage, 75 an ordinal).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from .bounded import make_room
from .store import Store, StoredArticle

__all__ = ["CorpusRows"]

ARTICLES_KEPT = 4_096
ORDINALS_KEPT = 16_384
PASSAGES_KEPT = 8_192
_UNREAD = object()  # a passage not kept (None: kept as absent)


class CorpusRows:
    """The store's reads an answer makes (:meth:`articles_by_id`, :meth:`passage_ordinals`,
    :meth:`passages_at`), answered from the rows kept for this corpus version where it can."""

    def __init__(self) -> None:
        self._articles: dict[str, StoredArticle] = {}
        self._ordinals: dict[int, int] = {}  # passage id -> its ordinal in its article
        self._passages: dict[tuple[str, int], str | None] = {}  # None: the article has no passage there

    def articles_by_id(self, corpus: Store, ids: Iterable[str]) -> dict[str, StoredArticle]:
        """``corpus.articles_by_id(ids)``, in id order (the order the stores' lookup gives: an answer's corrected
        word is looked for article by article in it)."""
        kept = self._articles
        out: dict[str, StoredArticle | None] = {}
        missing = []
        for article_id in sorted(set(ids)):
            out[article_id] = article = kept.get(article_id)
            if article is None:
                missing.append(article_id)
        if missing:
            found = corpus.articles_by_id(missing)
            make_room(kept, ARTICLES_KEPT)
            kept.update(found)
            out.update(found)
        return {article_id: article for article_id, article in out.items() if article is not None}

    def passage_ordinals(self, corpus: Store, passage_ids: Iterable[int]) -> dict[int, int]:
        """``corpus.passage_ordinals(passage_ids)``."""
        kept = self._ordinals
        out: dict[int, int] = {}
        missing = []
        for passage_id in passage_ids:
            ordinal = kept.get(passage_id)
            if ordinal is None:
                missing.append(passage_id)
            else:
                out[passage_id] = ordinal
        if missing:
            found = corpus.passage_ordinals(missing)
            make_room(kept, ORDINALS_KEPT)
            kept.update(found)
            out.update(found)
        return out

    def passages_at(
        self, corpus: Store, wanted: dict[str, Iterable[int]]
    ) -> dict[str, list[tuple[int, str]]]:
        """``corpus.passages_at(wanted)``: article id -> (ordinal, text) of its passages at the given ordinals
        that exist, in order."""
        kept = self._passages
        texts: dict[tuple[str, int], object] = {}
        for aid, ordinals in wanted.items():
            for ordinal in sorted({int(o) for o in ordinals if int(o) >= 0}):
                texts[aid, ordinal] = kept.get((aid, ordinal), _UNREAD)
        unread = [key for key, text in texts.items() if text is _UNREAD]
        if unread:
            missing: dict[str, Iterable[int]] = {
                aid: [o for _, o in group] for aid, group in itertools.groupby(unread, key=lambda key: key[0])
            }
            read = corpus.passages_at(missing)
            found: dict[tuple[str, int], str | None] = dict.fromkeys(unread)
            found.update(((aid, o), text) for aid, passages in read.items() for o, text in passages)
            make_room(kept, PASSAGES_KEPT)
            kept.update(found)
            texts.update(found)
        out: dict[str, list[tuple[int, str]]] = {aid: [] for aid in wanted}
        for (aid, ordinal), text in texts.items():
            if isinstance(text, str):
                out[aid].append((ordinal, text))
        return out
