"""The rows every answer reads again, kept for one corpus version: articles, passage ordinals, passage texts.

Questions in a burst keep coming back to the same articles, and each answer read their rows from the store
(three round trips, a few dozen microseconds each). A :class:`CorpusRows` belongs to one snapshot
(``retrieval.service.Snapshot``): a reload swaps in a new snapshot with an empty one, so rows kept under one
corpus version are never served under another. Within a version the rows do not change (an ingest makes a new
version); what a question needs that is not kept yet is read in one query as before.

Each kind of row is kept up to a bound; past it the older half is dropped (dicts keep insertion order). At the
bounds the rows take about 13 MB (BBC News: some 600 bytes an article or a passage, 75 an ordinal). A search
process reads the newest articles' rows ahead (:meth:`keep`), at start and after following a reload, so that
questions about them read none: up to ``KEPT_AHEAD`` of each bound (all of BBC News: the 2,127 articles that
show passages, 9,812 passages).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from .bounded import KEPT_AHEAD, make_room
from .store import Store, StoredArticle

__all__ = ["CorpusRows", "articles_ahead"]

ARTICLES_KEPT = 4_096
ORDINALS_KEPT = 16_384
PASSAGES_KEPT = 16_384
# Articles read ahead per query: small queries leave less memory behind (BBC News: 14 MB more, against 32 MB in
# queries of 200).
KEEP_QUERY = 20
_UNREAD = object()  # a passage not kept (None: kept as absent)


def articles_ahead() -> int:
    """How many of the newest articles :meth:`CorpusRows.keep` is offered at most."""
    return int(ARTICLES_KEPT * KEPT_AHEAD)


class CorpusRows:
    """The store's reads an answer makes (:meth:`articles_by_id`, :meth:`passage_ordinals`,
    :meth:`passages_at`), answered from the rows kept for this corpus version where it can."""

    def __init__(self) -> None:
        self._articles: dict[str, StoredArticle] = {}
        self._ordinals: dict[int, int] = {}  # passage id -> its ordinal in its article
        self._passages: dict[tuple[str, int], str | None] = {}  # None: the article has no passage there

    def keep(
        self, corpus: Store, articles: dict[str, list[int]], *, past_end: int = 0
    ) -> dict[str, list[tuple[int, str]]]:
        """Read ahead the rows of ``articles`` (article id -> its passages' ids, in order; the first articles
        come first), as many as fit in ``KEPT_AHEAD`` of each bound, in three queries per ``KEEP_QUERY``
        articles, and keep the ``past_end`` ordinals after each article's last passage as absent. Returns the
        passages read (article id -> (ordinal, text) of its passages), the first articles first. What is kept
        already stays."""
        chosen: dict[str, list[int]] = {}
        passages = 0
        for article_id, passage_ids in articles.items():
            passages += len(passage_ids)
            if len(chosen) >= articles_ahead() or passages > min(PASSAGES_KEPT, ORDINALS_KEPT) * KEPT_AHEAD:
                break
            chosen[article_id] = passage_ids
        # Kept in reverse, the first articles last: past a bound the older half goes first.
        order = list(reversed(chosen))
        read: dict[str, list[tuple[int, str]]] = {}
        for start in range(0, len(order), KEEP_QUERY):
            read.update(
                self._keep(corpus, {aid: chosen[aid] for aid in order[start : start + KEEP_QUERY]}, past_end)
            )
        return {aid: read[aid] for aid in chosen}

    def _keep(
        self, corpus: Store, chosen: dict[str, list[int]], past_end: int
    ) -> dict[str, list[tuple[int, str]]]:
        found = corpus.articles_by_id(chosen)
        self._articles.update((aid, found[aid]) for aid in chosen if aid in found)
        ordinals = corpus.passage_ordinals([pid for ids in chosen.values() for pid in ids])
        self._ordinals.update(
            (pid, ordinals[pid]) for ids in chosen.values() for pid in ids if pid in ordinals
        )
        texts = corpus.passages_at(
            {aid: [ordinals[pid] for pid in ids if pid in ordinals] for aid, ids in chosen.items()}
        )
        for aid in chosen:
            kept = texts.get(aid, [])
            self._passages.update(((aid, ordinal), text) for ordinal, text in kept)
            # The ordinals just past its last passage, which a quote may look for: kept as absent.
            last = max((ordinal for ordinal, _ in kept), default=-1)
            self._passages.update(((aid, last + 1 + d), None) for d in range(past_end))
        return texts

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
