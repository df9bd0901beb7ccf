"""Ingest a corpus folder into the store: scan the folder, then read it file by file in path order,
parsing what changed and writing each file's articles as soon as they are decided, all in one
transaction that commits at the end (so memory stays flat however large the corpus).

A broken file never stops an ingest and never removes what that file gave before; it is reported with
its reason. The promise is per article: while a record of a file is refused, the articles that file
gave before stay. Unchanged files are skipped by their SHA-256. The same text under two names is stored
once; when two files give the same id, the first in path order wins, and the other takes over when
the first is gone.

Hostile folders: links are followed only to files inside the corpus folder; folders nested deeper
than ``MAX_FOLDER_DEPTH`` are not read; an unreadable sub-folder, a file name that is not UTF-8 or
holds control characters, and a file over the size limit (checked before reading) are each one
reported failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CorpusError
from .models import Article, ParseResult, Refusal
from .parse import DEFAULT_MAX_FILE_BYTES, parse_file
from .passages import split_passages
from .store import CorpusState, KnownFile, Store, StoreWriter, related_json, utcnow_iso
from .workers import ordered, worker_pool

log = logging.getLogger(__name__)

DEFAULT_MAX_ARTICLE_BYTES = 2_000_000
# Documentation that sits beside the articles in many dumps (the BBC set has a README.TXT).
SKIPPED_NAMES = ("readme", "license", "licence", "changelog")
# Folders deeper than this below the corpus folder are reported, not read.
MAX_FOLDER_DEPTH = 32
# SQLite page cache of an ingest's write transaction, in KiB (the connection's own is restored afterwards).
INGEST_CACHE_KIB = 131_072
# Corpus files of at least this many bytes in all are read and parsed in worker processes (retrieval.workers)
# while this process writes; a smaller corpus is done before a worker would have started.
PARALLEL_MIN_BYTES = 16_000_000

Progress = Callable[[int, int], None]
# Called inside the ingest transaction, after the writes and before COMMIT, with the new corpus
# state and the transaction's writer; raising aborts the whole ingest.
BeforeCommit = Callable[[CorpusState, StoreWriter], None]


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


@dataclass(frozen=True, slots=True)
class CorpusFile:
    rel: str  # path relative to the corpus folder, with forward slashes
    path: Path
    size: int


@dataclass(slots=True)
class Scan:
    """What the corpus folder holds: the article files, and what could not be looked at."""

    files: list[CorpusFile] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    # Folders that could not be read: the files the store knows under them are kept, not removed.
    unreadable: list[str] = field(default_factory=list)

    def covers_unreadable(self, rel: str) -> bool:
        return any(rel.startswith(prefix) for prefix in self.unreadable)


def _shown(rel: str) -> str:
    """A path fit to print on one line: undecodable bytes and control characters escaped."""
    raw = os.fsencode(rel).decode("utf-8", "backslashreplace")
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in raw)


def _name_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8; rename the file"
    if not name.isprintable():
        return "the file name holds control characters; rename the file"
    return None


def scan_corpus(corpus_dir: Path) -> Scan:
    """The article files under ``corpus_dir``, sorted by path; hidden files and folders skipped.

    Raises CorpusError only when the corpus folder itself cannot be read."""
    if not corpus_dir.exists():
        raise CorpusError(f"the corpus folder {corpus_dir} does not exist")
    if not corpus_dir.is_dir():
        raise CorpusError(f"the corpus path {corpus_dir} is not a folder")
    if not os.access(corpus_dir, os.R_OK | os.X_OK):
        raise CorpusError(f"the corpus folder {corpus_dir} cannot be read (permission denied)")
    root = corpus_dir.resolve()
    scan = Scan()
    folders: list[tuple[str, int]] = [("", 0)]  # (relative folder with a trailing slash, depth)
    while folders:
        folder, depth = folders.pop()
        try:
            with os.scandir(corpus_dir / folder if folder else corpus_dir) as entries:
                found = sorted(entries, key=lambda e: e.name)
        except OSError as exc:
            if not folder:
                raise CorpusError(
                    f"cannot read the corpus folder {corpus_dir}: {exc.strerror or exc}"
                ) from exc
            scan.refusals.append(Refusal(_shown(folder), f"cannot read the folder: {exc.strerror or exc}"))
            scan.unreadable.append(folder)
            continue
        for entry in found:
            name = entry.name
            if name.startswith("."):
                continue
            rel = folder + name
            problem = _name_problem(name)
            try:
                is_link = entry.is_symlink()
                st = os.stat(entry.path) if is_link else entry.stat(follow_symlinks=False)
            except OSError as exc:
                scan.refusals.append(Refusal(_shown(rel), f"cannot read: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                if is_link:
                    scan.refusals.append(
                        Refusal(_shown(rel), "a link to a folder; links to folders are not followed")
                    )
                elif problem:
                    scan.refusals.append(Refusal(_shown(rel), problem.replace("file name", "folder name")))
                elif depth >= MAX_FOLDER_DEPTH:
                    scan.refusals.append(
                        Refusal(
                            _shown(rel), f"folder nested more than {MAX_FOLDER_DEPTH} levels deep; not read"
                        )
                    )
                else:
                    folders.append((rel + "/", depth + 1))
                continue
            if Path(name).stem.lower() in SKIPPED_NAMES or not stat.S_ISREG(st.st_mode):
                continue
            if problem:
                scan.refusals.append(Refusal(_shown(rel), problem))
                continue
            if is_link and not Path(os.path.realpath(entry.path)).is_relative_to(root):
                scan.refusals.append(
                    Refusal(rel, "a link to a file outside the corpus folder; such links are not followed")
                )
                continue
            scan.files.append(CorpusFile(rel, Path(entry.path), st.st_size))
    scan.files.sort(key=lambda f: f.rel)
    return scan


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


def _read(file: CorpusFile, limit: int) -> bytes:
    """The file's bytes; raises ValueError with the reason when it is over ``limit`` (checked before
    reading, and again while reading a file that grew meanwhile)."""
    if file.size > limit:
        raise ValueError(f"file is {file.size:,} bytes, over the {limit:,} byte file limit")
    with open(file.path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"file is over the {limit:,} byte file limit")
    return data


@dataclass(frozen=True, slots=True)
class _Job:
    """One file to read and parse (in a worker process or here)."""

    file: CorpusFile
    known_sha: str | None  # when the file still has these bytes, it is not parsed (it is likely unchanged)
    max_article_bytes: int
    max_file_bytes: int


@dataclass(slots=True)
class _Prepared:
    """A file read and parsed: its SHA-256, its articles with each one's passages, or why it failed."""

    sha: str | None = None
    result: ParseResult | None = None
    passages: list[list[str]] = field(default_factory=list)  # each article's passage texts
    failure: str | None = None
    trace: str = ""  # the traceback of a parser that raised


def _parse_unless(previous: KnownFile | None) -> str | None:
    """The bytes that need not be parsed: those the store already holds whole for the file."""
    return previous.sha256 if previous is not None and not previous.refusals else None


def _prepare(job: _Job) -> _Prepared:
    """Read and parse one file, and split its articles into passages: the CPU-bound part of an ingest, which
    runs in worker processes for a large corpus (``retrieval.workers``)."""
    try:
        data = _read(job.file, job.max_file_bytes)
    except (OSError, ValueError) as exc:
        reason = f"cannot read the file: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)
        return _Prepared(failure=reason)
    sha = hashlib.sha256(data).hexdigest()
    if sha == job.known_sha:
        return _Prepared(sha=sha)
    try:
        result = parse_file(
            job.file.rel, data, max_article_bytes=job.max_article_bytes, max_file_bytes=job.max_file_bytes
        )
    except Exception as exc:  # a parser bug must not cost the rest of the corpus
        return _Prepared(
            sha=sha, failure=f"parser error: {type(exc).__name__}: {exc}", trace=traceback.format_exc()
        )
    del data
    passages = [[p.text for p in split_passages(article)] for article in result.articles]
    return _Prepared(sha=sha, result=result, passages=passages)


def _digest(fingerprint: tuple) -> bytes:
    """A fingerprint in 16 bytes: what an ingest keeps in memory per stored article."""
    return hashlib.blake2b(repr(fingerprint).encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Changes:
    """The writes of one ingest, in one transaction opened at the first write (an ingest that changes
    nothing writes nothing, and works on a read-only database)."""

    def __init__(self, store: Store, stack: contextlib.ExitStack, *, rebuild: bool) -> None:
        self._store = store
        self._stack = stack
        self._rebuild = rebuild
        self._writer: StoreWriter | None = None
        self._restore = ""  # the statement that gives the connection its own page cache back
        self.now = utcnow_iso()

    @property
    def opened(self) -> bool:
        return self._writer is not None

    @property
    def writer(self) -> StoreWriter:
        if self._writer is None:
            self._stack.callback(self._restore_cache)  # registered first: runs once the transaction has ended
            self._writer = self._stack.enter_context(self._store.writer())
            if self._store.backend == "sqlite":
                # A larger page cache for the transaction: its rows go into indexes keyed by content hashes,
                # in no order, and with the default 2 MB cache nearly every insert reads a page back from the
                # file (a third of the time of an ingest of 200,000 articles).
                before = int(self._writer.execute("PRAGMA cache_size").fetchone()[0])
                self._writer.execute(f"PRAGMA cache_size = {-INGEST_CACHE_KIB}")
                self._restore = f"PRAGMA cache_size = {before}"
            if self._rebuild:
                self._writer.clear_corpus()
        return self._writer

    def _restore_cache(self) -> None:
        if self._writer is not None and self._restore:
            with contextlib.suppress(Exception):  # best effort: never hide how the transaction ended
                self._writer.execute(self._restore)


def apply_changes(
    store: Store,
    scan: Scan,
    *,
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    rebuild: bool = False,
    progress: Progress | None = None,
    before_commit: BeforeCommit | None = None,
    workers: int = 0,
) -> IngestSummary:
    """Read and parse what changed, file by file in path order, and write each file's articles and
    passages as soon as they are decided, in one transaction; then remove what is gone and commit.

    Memory stays flat as the corpus grows: one file's articles at a time, plus a few small values per
    stored article (its id, a 16-byte digest of its fields, the file that gives it).

    ``workers``: for a corpus of at least ``PARALLEL_MIN_BYTES``, up to this many worker processes read and
    parse the files ahead (``retrieval.workers``) while this process writes; the store is the same."""
    summary = IngestSummary(files=len(scan.files))
    summary.failures.extend(scan.refusals)
    known: dict[str, KnownFile] = {} if rebuild else store.known_files()
    old: dict[str, bytes] = {} if rebuild else {i: _digest(f) for i, f in store.iter_article_fingerprints()}

    incoming: set[str] = set()  # ids written (or found unchanged) from the files read this time
    owner: dict[str, str] = {}  # article id -> the file that gives it
    kept_ids: set[str] = set()  # ids kept as they are in the store

    def keep(rel: str, ids: list[str]) -> list[str]:
        """Keep what ``rel`` gave before (the ids no earlier file claims); returns those ids."""
        mine = [i for i in ids if owner.setdefault(i, rel) == rel and i not in incoming]
        kept_ids.update(mine)
        return mine

    for rel, record in known.items():  # files in folders that could not be read this time
        if scan.covers_unreadable(rel):
            keep(rel, record.article_ids)

    version = 0
    with contextlib.ExitStack() as stack:
        changes = _Changes(store, stack, rebuild=rebuild)
        if sum(f.size for f in scan.files) < PARALLEL_MIN_BYTES:
            workers = 0
        jobs = (
            (file, _Job(file, _parse_unless(known.get(file.rel)), max_article_bytes, max_file_bytes))
            for file in scan.files
        )
        with worker_pool(workers) as pool:
            for done, (file, prepared) in enumerate(ordered(_prepare, jobs, pool, workers), 1):
                rel = file.rel
                previous = known.get(rel)
                if progress:
                    progress(done, len(scan.files))
                if (
                    previous
                    and previous.sha256 == prepared.sha
                    and not previous.refusals
                    and not any(owner.get(i, rel) != rel for i in previous.article_ids)
                ):
                    keep(rel, previous.article_ids)  # unchanged
                    continue
                if prepared.result is None and prepared.failure is None:  # the same bytes, parsed after all
                    prepared = _prepare(_Job(file, None, max_article_bytes, max_file_bytes))
                if prepared.failure is not None or prepared.result is None or prepared.sha is None:
                    if prepared.trace:
                        log.error("parser failed on %s\n%s", rel, prepared.trace)
                    summary.failures.append(Refusal(rel, prepared.failure or "not parsed"))
                    if previous:
                        keep(rel, previous.article_ids)
                    continue
                result, passages, sha = prepared.result, prepared.passages, prepared.sha
                refusals = list(result.refusals)
                ids = []
                for article, texts in zip(result.articles, passages, strict=True):
                    other = owner.get(article.id)
                    if other is not None and other != rel:
                        refusals.append(Refusal(rel, f"article id {article.id!r} is also given by {other}"))
                        continue
                    if article.id in incoming:
                        refusals.append(
                            Refusal(rel, f"article id {article.id!r} is given twice in this file")
                        )
                        continue
                    incoming.add(article.id)
                    owner[article.id] = rel
                    ids.append(article.id)
                    stored = old.get(article.id)
                    if stored is not None and stored == _digest(_fingerprint(article)):
                        summary.unchanged += 1
                        continue
                    if stored is None:
                        summary.added += 1
                    else:
                        summary.changed += 1
                    writer = changes.writer
                    writer.put_article(article, now=changes.now, new=stored is None)
                    writer.put_text(article.content_hash, article.body, texts)
                summary.failures.extend(refusals)
                if result.articles or not result.refusals:
                    if refusals and previous:
                        # Some record of the file is refused: what the file gave before stays until it parses whole.
                        ids.extend(keep(rel, [i for i in previous.article_ids if i not in ids]))
                    changes.writer.put_file(
                        rel,
                        sha,
                        file.size,
                        ids,
                        [{"path": r.path, "reason": r.reason} for r in refusals],
                        changes.now,
                    )
                elif previous:
                    keep(rel, previous.article_ids)  # nothing usable now: keep what it gave, retry next time
                del result, passages, prepared

        removed = [i for i in old if i not in kept_ids and i not in incoming]
        summary.removed = len(removed)
        summary.unchanged += len(kept_ids & old.keys())
        present = {f.rel for f in scan.files}
        gone_files = [p for p in known if p not in present and not scan.covers_unreadable(p)]
        if removed or gone_files or rebuild or changes.opened:
            writer = changes.writer
            writer.delete_articles(removed)
            writer.drop_orphan_texts()
            writer.delete_files(gone_files)
            if rebuild or summary.changed_anything:
                state = writer.bump_version()
                version = state.version
                if before_commit:
                    before_commit(state, changes.writer)
    summary.corpus_version = version
    return summary


def ingest_folder(
    store: Store,
    corpus_dir: Path,
    *,
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    progress: Progress | None = None,
    before_commit: BeforeCommit | None = None,
    rebuild: bool = False,
    trigger: str = "cli",
    workers: int = 0,
) -> IngestSummary:
    """Bring the store in line with ``corpus_dir``. Raises CorpusError, StoreError or IngestRunning and
    leaves the store as it was when the folder cannot be read or the database cannot be written."""
    started = time.perf_counter()
    started_at = utcnow_iso()
    summary = IngestSummary()
    try:
        with store.ingest_lock():
            scan = scan_corpus(corpus_dir)
            summary = apply_changes(
                store,
                scan,
                max_article_bytes=max_article_bytes,
                max_file_bytes=max_file_bytes,
                rebuild=rebuild,
                progress=progress,
                before_commit=before_commit,
                workers=workers,
            )
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
