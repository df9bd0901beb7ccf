"""Ingest a corpus folder into the store: parse what changed, write it in one transaction.

A broken file never stops an ingest and never removes what that file gave before; it is reported with
its reason. Unchanged files are skipped by their SHA-256. The same text under two names is stored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError
from .models import Article, Refusal
from .parse import parse_file
from .passages import split_passages
from .store import Store, related_json, utcnow_iso

log = logging.getLogger(__name__)

DEFAULT_MAX_ARTICLE_BYTES = 2_000_000
# Documentation that sits beside the articles in many dumps (the BBC set has a README.TXT).
SKIPPED_NAMES = ("readme", "license", "licence", "changelog")

Progress = Callable[[int, int], None]
# Called inside the ingest transaction, after the writes and before COMMIT, with the new corpus
# version; raising aborts the whole ingest.
BeforeCommit = Callable[[int], None]


@dataclass(slots=True)
class IngestSummary:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failures: list[Refusal] = field(default_factory=list)
    files: int = 0
    corpus_version: int = 0
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def changed_anything(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def to_json(self) -> dict:
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": self.failed,
            "failures": [{"path": f.path, "reason": f.reason} for f in self.failures],
            "files": self.files,
            "corpus_version": self.corpus_version,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        return (
            f"{self.added} added, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {self.failed} failed"
        )


def scan_corpus(corpus_dir: Path) -> list[tuple[str, Path]]:
    """The article files under ``corpus_dir`` as (relative posix path, path), sorted; hidden files skipped."""
    if not corpus_dir.exists():
        raise CorpusError(f"the corpus folder {corpus_dir} does not exist")
    if not corpus_dir.is_dir():
        raise CorpusError(f"the corpus path {corpus_dir} is not a folder")
    if not os.access(corpus_dir, os.R_OK | os.X_OK):
        raise CorpusError(f"the corpus folder {corpus_dir} cannot be read (permission denied)")
    found: list[tuple[str, Path]] = []

    def walk_error(exc: OSError) -> None:
        raise CorpusError(f"cannot read {exc.filename}: {exc.strerror}")

    for root, dirs, files in os.walk(corpus_dir, onerror=walk_error):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or Path(name).stem.lower() in SKIPPED_NAMES:
                continue
            path = Path(root) / name
            if path.is_file():
                found.append((path.relative_to(corpus_dir).as_posix(), path))
    found.sort()
    return found


def _fingerprint(article: Article) -> tuple:
    """The fields whose change makes an article "changed", in ``Store.article_fingerprints`` order."""
    return (
        article.title,
        article.published,
        article.url,
        article.category,
        article.content_hash,
        related_json(article),
        article.source,
    )


def ingest_folder(
    store: Store,
    corpus_dir: Path,
    *,
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES,
    progress: Progress | None = None,
    before_commit: BeforeCommit | None = None,
    rebuild: bool = False,
    trigger: str = "cli",
) -> IngestSummary:
    """Bring the store in line with ``corpus_dir``. Raises CorpusError or StoreError and leaves the
    store as it was when the folder cannot be read or the database cannot be written."""
    started = time.perf_counter()
    started_at = utcnow_iso()
    summary = IngestSummary()
    try:
        files = scan_corpus(corpus_dir)
        summary.files = len(files)
        known = {} if rebuild else store.known_files()
        old = {} if rebuild else store.article_fingerprints()

        incoming: dict[str, Article] = {}
        owner: dict[str, str] = {}  # article id -> the file that gave it
        kept_ids: set[str] = set()  # ids from files skipped as unchanged or failed as a whole
        file_rows: list[tuple[str, str, int, list[str], list[dict]]] = []

        for done, (rel, path) in enumerate(files, 1):
            previous = known.get(rel)
            try:
                data = path.read_bytes()
            except OSError as exc:
                summary.failures.append(Refusal(rel, f"cannot read the file: {exc.strerror or exc}"))
                if previous:
                    kept_ids.update(previous[1])
                continue
            sha = hashlib.sha256(data).hexdigest()
            if previous and previous[0] == sha:
                kept_ids.update(previous[1])
                for article_id in previous[1]:
                    owner.setdefault(article_id, rel)
            else:
                try:
                    result = parse_file(rel, data, max_article_bytes=max_article_bytes)
                except Exception as exc:  # a parser bug must not cost the rest of the corpus
                    log.exception("parser failed on %s", rel)
                    summary.failures.append(Refusal(rel, f"parser error: {type(exc).__name__}: {exc}"))
                    if previous:
                        kept_ids.update(previous[1])
                    continue
                summary.failures.extend(result.refusals)
                ids = []
                for article in result.articles:
                    if article.id in owner or article.id in incoming:
                        other = owner.get(article.id) or incoming[article.id].source
                        summary.failures.append(
                            Refusal(rel, f"article id {article.id!r} is also given by {other}")
                        )
                        continue
                    incoming[article.id] = article
                    owner[article.id] = rel
                    ids.append(article.id)
                if result.articles or not result.refusals:
                    file_rows.append(
                        (
                            rel,
                            sha,
                            len(data),
                            ids,
                            [{"path": r.path, "reason": r.reason} for r in result.refusals],
                        )
                    )
                elif previous:
                    # Nothing usable in the file now: keep what it gave before, retry it next time.
                    kept_ids.update(previous[1])
            if progress:
                progress(done, len(files))

        final_ids = kept_ids | incoming.keys()
        removed = [i for i in old if i not in final_ids]
        summary.removed = len(removed)
        summary.unchanged = len(kept_ids & old.keys())
        writes: list[tuple[Article, bool]] = []
        for article_id, article in incoming.items():
            if article_id not in old:
                summary.added += 1
                writes.append((article, True))
            elif old[article_id] != _fingerprint(article):
                summary.changed += 1
                writes.append((article, False))
            else:
                summary.unchanged += 1
        gone_files = [p for p in known if p not in {rel for rel, _ in files}]

        if rebuild or writes or removed or file_rows or gone_files:
            now = utcnow_iso()
            with store.transaction() as conn:
                if rebuild:
                    for table in ("passages", "texts", "articles", "files"):
                        conn.execute(f"DELETE FROM {table}")
                store.delete_articles(conn, removed)
                for article, new in writes:
                    store.put_article(conn, article, now=now, new=new)
                    store.put_text(
                        conn, article.content_hash, article.body, [p.text for p in split_passages(article)]
                    )
                store.drop_orphan_texts(conn)
                store.delete_files(conn, gone_files)
                for rel, sha, size, ids, refusals in file_rows:
                    store.put_file(conn, rel, sha, size, ids, refusals, now)
                if rebuild or summary.changed_anything:
                    summary.corpus_version = store.bump_version(conn)
                    if before_commit:
                        before_commit(summary.corpus_version)
        if not summary.corpus_version:
            summary.corpus_version = store.corpus_version()
    except Exception as exc:
        summary.seconds = time.perf_counter() - started
        store.record_run(_run_row(summary, started_at, trigger, corpus_dir, "failed", str(exc)))
        raise
    summary.seconds = time.perf_counter() - started
    store.record_run(_run_row(summary, started_at, trigger, corpus_dir, "ok", None))
    return summary


def _run_row(
    summary: IngestSummary, started_at: str, trigger: str, corpus_dir: Path, status: str, error: str | None
) -> dict:
    return {
        "started_at": started_at,
        "finished_at": utcnow_iso(),
        "trigger": trigger,
        "corpus_dir": str(corpus_dir),
        "status": status,
        "added": summary.added,
        "changed": summary.changed,
        "unchanged": summary.unchanged,
        "removed": summary.removed,
        "failed": summary.failed,
        "failures": json.dumps(
            [{"path": f.path, "reason": f.reason} for f in summary.failures][:200], ensure_ascii=False
        ),
        "error": error,
        "corpus_version": summary.corpus_version,
        "seconds": round(summary.seconds, 3),
    }
