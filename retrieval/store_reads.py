"""The reads both stores make alike, written once in portable SQL (``?`` placeholders) and run through each
store's :meth:`query`: SQLite runs it as it is, PostgreSQL after ``pg_sql`` gives it psycopg's placeholders.
What differs stays in each store (streaming cursors, the passages at given ordinals, JSON functions)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from .store import ARTICLE_COLUMNS, CorpusState, KnownFile, StoredArticle, article_from_row, known_file

CORPUS_STATE = "SELECT key, value FROM meta WHERE key IN ('corpus_version', 'corpus_stamp')"
FINGERPRINTS = "SELECT id, title, published, url, category, content_hash, related, source FROM articles"
# Every passage with the article that shows it: the smallest id among the articles sharing its text.
INDEX_DOCS = (
    "WITH canon AS (SELECT content_hash, min(id) AS id FROM articles GROUP BY content_hash)"
    " SELECT p.id, a.id, a.title, p.text, a.published, a.content_hash FROM passages p"
    " JOIN canon c ON c.content_hash = p.text_hash JOIN articles a ON a.id = c.id ORDER BY p.id"
)
LATEST_RUN = "SELECT * FROM ingest_runs ORDER BY id DESC LIMIT 1"


class SharedReads:
    """The read methods of :class:`retrieval.store.Store` that are the same SQL on both back ends."""

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def _one_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` is one of ``values`` (not empty): the condition and its parameters."""
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def corpus_version(self) -> int:
        return self.corpus_state().version

    def corpus_state(self) -> CorpusState:
        rows = dict(self.query(CORPUS_STATE))
        return CorpusState(int(rows.get("corpus_version") or 0), rows.get("corpus_stamp") or "")

    def counts(self) -> dict[str, int]:
        ((articles, passages, texts),) = self.query(
            "SELECT (SELECT count(*) FROM articles), (SELECT count(*) FROM passages),"
            " (SELECT count(*) FROM texts)"
        )
        return {"articles": articles, "passages": passages, "texts": texts}

    def known_files(self) -> dict[str, KnownFile]:
        """path -> what the last ingest recorded of that file."""
        rows = self.query("SELECT path, sha256, article_ids, refusals FROM files")
        return {path: known_file(sha, ids, refusals) for path, sha, ids, refusals in rows}

    def article_fingerprints(self) -> dict[str, tuple]:
        """id -> the tuple of fields whose change makes an article "changed"."""
        return {row[0]: tuple(row[1:]) for row in self.query(FINGERPRINTS)}

    def article(self, article_id: str) -> StoredArticle | None:
        rows = self.query(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?", [article_id])
        return article_from_row(rows[0]) if rows else None

    def articles_by_id(self, ids: Iterable[str]) -> dict[str, StoredArticle]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        where, params = self._one_of("id", wanted)
        rows = self.query(f"SELECT {ARTICLE_COLUMNS} FROM articles WHERE {where}", params)
        return {row[0]: article_from_row(row) for row in rows}

    def passages_for_article(self, article_id: str) -> list[tuple[int, str]]:
        """(ordinal, text) of an article's passages, in order."""
        rows = self.query(
            "SELECT p.ordinal, p.text FROM passages p JOIN articles a ON a.content_hash = p.text_hash"
            " WHERE a.id = ? ORDER BY p.ordinal",
            [article_id],
        )
        return [(ordinal, text) for ordinal, text in rows]

    def passage_ordinals(self, passage_ids: Iterable[int]) -> dict[int, int]:
        """passage id -> its ordinal in its article, without the text."""
        ids = [int(i) for i in passage_ids]
        if not ids:
            return {}
        where, params = self._one_of("id", ids)
        return dict(self.query(f"SELECT id, ordinal FROM passages WHERE {where}", params))

    def _latest_downvotes(self, limit: int) -> list[dict]:
        """The latest 👎 answers (the first half of ``feedback_summary``)."""
        rows = self.query(
            "SELECT created_at, question, article_ids FROM feedback WHERE vote < 0 ORDER BY id DESC LIMIT ?",
            [limit],
        )
        return [
            {"created_at": c, "question": q, "article_ids": json.loads(ids or "[]")} for c, q, ids in rows
        ]

    def headlines(
        self,
        limit: int = 10,
        *,
        offset: int = 0,
        since: str | None = None,
        until: str | None = None,
        ids: Iterable[str] | None = None,
    ) -> list[StoredArticle]:
        """Newest first by published date; undated articles last (then by id for a stable order)."""
        where: list[str] = []
        params: list[object] = []
        if since:
            where.append("published >= ?")
            params.append(since)
        if until:
            where.append("published < ?")
            params.append(until)
        if ids is not None:
            id_list = list(ids)
            if not id_list:
                return []
            condition, values = self._one_of("id", id_list)
            where.append(condition)
            params.extend(values)
        sql = f"SELECT {ARTICLE_COLUMNS} FROM articles"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY published IS NULL, published DESC, id LIMIT ? OFFSET ?"
        params.extend([int(limit), int(offset)])
        return [article_from_row(row) for row in self.query(sql, params)]
