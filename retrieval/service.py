"""The one object the CLI, the bot and the web pages hold: search, headlines, reload.

A reload builds the new index beside the serving one inside the ingest transaction, commits, then swaps
one reference; a reload that fails leaves the old snapshot serving and the database unchanged.
Several processes may share one database: each watches ``corpus_version`` (``refresh_if_changed``).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import logging
import os
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .analyze import Analyzer
from .answering import POOL, plan_query, rerank, surface_words, verdict
from .corpus_rows import CorpusRows, articles_ahead
from .errors import (
    DamagedDatabase,
    EmptyArchive,
    NotNewsdeskDatabase,
    QuestionError,
    ReloadInProgress,
    StoreError,
)
from .excerpt import Excerpt
from .index import FORMAT_VERSION as INDEX_FORMAT_VERSION
from .index import BM25Index, IndexDoc, IndexLoadError, layouts_fit
from .ingest import DEFAULT_MAX_ARTICLE_BYTES, IngestSummary, Progress, ingest_folder
from .layout import Sentences
from .links import LinkPolicy
from .models import PickledAsCall
from .parse import DEFAULT_MAX_FILE_BYTES
from .question import build_query
from .quote import choose_quote, join_quotes, quote_weights
from .quote import load_compiled as load_quote_kernel
from .server_settings import ServerSettingsTable
from .spelling import Correction, Speller
from .status import DatabaseStatus, FeedbackSummary, IngestRun, RatedAnswer, ReloadStatus, ServiceStats
from .store import CorpusState, Store, StoredArticle, StoreWriter, is_database_url, open_store
from .workers import default_workers

if TYPE_CHECKING:
    from .corpus_copy import CorpusCopy
    from .pg_store import PostgresStore
    from .pg_sync import VersionListener

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
KEEP_INDEX_VERSIONS = 2
# A build, download or deletion folder untouched this long was left by a process that died.
LEFTOVER_SECONDS = 3600.0
QUOTE_FOLLOWING = 1  # the quote may reach this many passages past one the search found
QUOTE_CENTERS = 3  # around the best few passages of the article the search found
SECOND_QUOTE = True  # a result may hold a second quote from another passage of its article
STAMP_FILE = "corpus_stamp"  # beside an index's arrays: the corpus stamp of the database it was built from


@dataclass(frozen=True, slots=True)
class Result(PickledAsCall):
    article_id: str
    title: str
    published: str | None
    url: str | None
    ordinal: int
    passage: str
    excerpt: Excerpt
    score: float
    missing: tuple[str, ...] = ()  # the question's distinctive words this article lacks

    def to_json(self) -> dict:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "published": self.published,
            "url": self.url,
            "passage": self.passage,
            "excerpt": self.excerpt.text,
            "score": round(self.score, 6),
            "passage_ordinal": self.ordinal,
            "excerpt_spans": [list(s) for s in self.excerpt.spans],
            "missing": list(self.missing),
        }


@dataclass(slots=True)
class Answer(PickledAsCall):
    question: str
    took_ms: float
    no_match: bool
    results: list[Result] = field(default_factory=list)
    total: int = 0  # passages that matched at least one term (estimated on large corpora)
    offset: int = 0
    has_more: bool = False  # another page of results exists
    corrections: list[tuple[str, str]] = field(default_factory=list)  # (as typed, searched instead)
    context: tuple[str, ...] = ()  # the earlier questions a follow-up was searched with

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "took_ms": round(self.took_ms, 3),
            "no_match": self.no_match,
            "results": [r.to_json() for r in self.results],
            "corrections": [{"from": a, "to": b} for a, b in self.corrections],
            "context": list(self.context),
        }


@dataclass(frozen=True, slots=True)
class Headline:
    article_id: str
    title: str
    published: str | None
    url: str | None
    category: str | None

    def to_json(self) -> dict:
        return {
            "article_id": self.article_id,
            "title": self.title,
            "published": self.published,
            "url": self.url,
            "category": self.category,
        }


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    index: BM25Index | None  # None while the archive holds no passages
    loaded_at: float
    stamp: str = ""  # the database's corpus stamp: another database at the same version differs here
    reader: CorpusCopy | None = None  # this version's local corpus copy (shared databases); None: the store
    # The rows answers read, kept for this version only: a reload's new snapshot starts with none.
    rows: CorpusRows = field(default_factory=CorpusRows, compare=False, repr=False)

    def require_index(self) -> BM25Index:
        if self.index is None:
            raise EmptyArchive(
                "the archive has no articles yet: add article files to the corpus folder and run "
                "`newsdesk ingest` (or /reload)"
            )
        return self.index


def clean_question(question: str, *, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """Normalize a question and refuse what cannot be searched, with a message saying why."""
    # Zero-width and other format characters would split words invisibly. They go before normalizing,
    # so that an accent typed after one still composes with its letter. Lone surrogates (undecodable
    # bytes on a command line) are not text: the question could not be stored or sent as UTF-8.
    # A zero-width space separates words (it is how some scripts and editors mark a word break).
    text = (question or "").replace("\u200b", " ")
    if not (text.isascii() and text.isprintable()):  # printable ASCII (most questions) has nothing to drop
        text = "".join(
            ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Cs") or ch in "\n\t"
        )
        text = unicodedata.normalize("NFKC", text)
    text = " ".join(text.split())
    if not text:
        raise QuestionError("the question is empty: ask something like `who surrounded Manbij in 2016?`")
    if len(text) > max_chars:
        raise QuestionError(f"the question is {len(text):,} characters long; the limit is {max_chars:,}")
    return text


def _clean_context(question: str, max_chars: int) -> str:
    """An earlier question as context; one that cannot be searched is left out, not refused."""
    try:
        return clean_question(question, max_chars=max_chars)
    except QuestionError:
        return ""


def _corrected_word(
    correction: Correction, passages: dict[str, list[tuple[int, str]]], index: BM25Index
) -> str:
    """The word as the archive writes it for a corrected term ("Kuznetsova" for ``kuznetsova``)."""
    wanted = correction.corrected
    numbers = index.term_numbers([wanted])
    for article_id, article_passages in passages.items():
        for ordinal, text in article_passages[:3]:
            stored = index.passage_sentences(article_id, ordinal, text, numbers)
            if stored is not None:  # the layout kept with the index: no need to analyse the text
                for start, _, matches in stored:
                    for a, b, _ in matches:
                        return text[start + a : start + b]
            elif wanted in index.analyzer.terms(text):
                for start, end, term in index.analyzer.term_spans(text):
                    if term == wanted:
                        return text[start:end]
    return correction.corrected


def _disk_full(exc: BaseException) -> bool:
    """True for an error that a full disk caused (the StoreError wraps the OSError)."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


class _KnownDown(Exception):
    """The database is known not to answer: ``stats`` reports from the loaded index without asking it."""


# What /about and /healthz say while the database does not answer (the details are in the log).
PUBLIC_DATABASE_ERROR = "the database did not answer"


class NewsService:
    def __init__(
        self,
        db_path: str | Path,
        corpus_dir: str | Path,
        *,
        language: str = "english",
        max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES,
        links: LinkPolicy | None = None,
        index_root: str | Path | None = None,
        max_question_chars: int = MAX_QUESTION_CHARS,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        create: bool = True,
        reload_in_child: bool = False,
        index_cache: str | Path | None = None,
        ingest_workers: int | None = None,
        builds_index: bool = True,
    ) -> None:
        """``db_path``: an SQLite file, or a ``postgresql://`` URL (``retrieval.store.open_store``).
        ``create=False`` (reading commands) opens only an existing newsdesk database. The search index lives in
        ``index_root`` when given; else beside an SQLite file, or for PostgreSQL in a folder of its own under
        ``index_cache`` (default ``data/index-cache``). ``ingest_workers``: worker processes a
        reload of a large corpus may start (``retrieval.workers``; default one less than the cores).
        ``builds_index=False`` (a search process) only loads an index another process saved: one that is missing
        is an ``IndexLoadError``, never minutes of building while questions wait."""
        self.db_path: Path | str = str(db_path).strip() if is_database_url(db_path) else Path(db_path)
        # A server sets this: its reloads then run in a child process (see reload()).
        self.reload_in_child = reload_in_child
        self.corpus_dir = Path(corpus_dir)
        self.store: Store = open_store(self.db_path, create=create)
        self._db_identity = self._file_identity()
        self.analyzer = Analyzer(language)
        self.max_article_bytes = max_article_bytes
        self.max_file_bytes = max_file_bytes
        self.ingest_workers = default_workers() if ingest_workers is None else max(0, ingest_workers)
        self.links = links or LinkPolicy()
        self.index_root = (
            Path(index_root)
            if index_root
            else self.store.default_index_root(Path(index_cache) if index_cache else None)
        )
        self.max_question_chars = max_question_chars
        self.builds_index = builds_index
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self.started_at = time.time()
        self.last_reload: ReloadStatus | None = None  # the latest reload in this process
        self._spellers: tuple[BM25Index, Speller] | None = None
        self._db_down: DatabaseStatus | None = None  # set while the database does not answer
        self._db_status_lock = threading.Lock()
        self._last_run_seen: dict | None = None
        self._db_answered_at = 0.0  # time.time() of the last call the database answered
        self._db_failed_at = 0.0  # time.time() of the last call that found it unreachable
        self._listener: VersionListener | None = None

    # -- snapshot ------------------------------------------------------------------------------
    def _index_dir(self, state: CorpusState) -> Path:
        return self.index_root / f"v{state.version}"

    def _load_index(self, state: CorpusState) -> BM25Index:
        """The saved index of this corpus. The folder is named by version; the stamp saved beside the
        arrays ties it to this database, so a database replaced by another one at the same version
        never serves the old one's index. Raises IndexLoadError."""
        directory = self._index_dir(state)
        index = BM25Index.load(directory)
        load_quote_kernel()  # compiled code the answers need beside the index's
        try:
            saved = (directory / STAMP_FILE).read_text(encoding="ascii").strip()
        except (OSError, ValueError):
            saved = ""
        if saved != state.stamp:
            raise IndexLoadError(f"the index at {directory} was built from another database")
        return index

    def _load_saved(self, state: CorpusState) -> BM25Index:
        """``_load_index``; a folder in place that does not load is stale or damaged (folders are renamed into
        place whole), and is set aside so that a new one can take its place. Raises IndexLoadError."""
        existed = self._index_dir(state).exists()
        try:
            return self._load_index(state)
        except IndexLoadError:
            if existed:
                _discard(self._index_dir(state))
            raise

    def open(self) -> Snapshot:
        """Load the index of the store's current corpus, building it if it is missing or stale.

        On a shared database a missing index is downloaded from the database first (the process that
        ingested stored it there), and built from the rows only when none is stored."""
        state = self.store.corpus_state()
        try:
            index: BM25Index | None = self._load_saved(state)
        except IndexLoadError as exc:
            if self._shared:
                return self._open_shared(state, exc)
            self._refuse_to_build(exc)
            # missing, stale or damaged: rebuild from the store, never from the files
            log.info("building the search index for corpus version %s (%s)", state.version, exc)
            index = self._build_index()
            if index is not None:
                try:
                    self._save_index(index, state)
                    index = self._load_index(state)
                except (StoreError, IndexLoadError) as save_error:
                    # e.g. a full disk: answer from the index in memory meanwhile
                    log.warning(
                        "serving corpus version %s from an index held in memory: %s",
                        state.version,
                        save_error,
                    )
        return self._swap(state, index)

    def _refuse_to_build(self, why: IndexLoadError) -> None:
        """Raise ``why`` in a service that only loads saved indexes (``builds_index=False``), unless the archive
        is empty: there is nothing to build then."""
        if not self.builds_index and self.store.counts()["passages"]:
            raise why

    def _open_shared(self, state: CorpusState, why: IndexLoadError) -> Snapshot:
        """``open`` on a shared database when this machine lacks the index of ``state``."""
        from .pg_sync import SnapshotError, fetch_snapshot, store_snapshot_if_missing

        directory = self._index_dir(state)
        started = time.perf_counter()
        damaged = False
        try:
            stored = fetch_snapshot(self.store_connection, state.version, state.stamp, directory)
        except SnapshotError as exc:
            log.warning(
                "the stored index of corpus version %s is unusable (%s); building it", state.version, exc
            )
            stored, damaged = None, True
        except StoreError as exc:
            if not _disk_full(exc):
                raise
            return self._open_in_memory(exc)
        loaded = None
        if stored is not None:
            log.info(
                "downloaded the index of corpus version %s (%.1f MB) in %.2f s",
                state.version,
                stored.total_bytes / 1e6,
                time.perf_counter() - started,
            )
            try:
                loaded = self._load_index(state)
            except IndexLoadError as exc:  # stored by another newsdesk version, say: build our own
                log.warning(
                    "the stored index of corpus version %s does not load (%s); building it",
                    state.version,
                    exc,
                )
                damaged = True
                _discard(directory)
        if loaded is not None:
            snapshot = self._swap(state, loaded)
        else:
            self._refuse_to_build(why)
            log.info("building the search index for corpus version %s (%s; none stored)", state.version, why)
            state, index = self._build_shared()
            if index is not None and store_snapshot_if_missing(
                self.store_connection,
                state.version,
                state.stamp,
                self._index_dir(state),
                replace_damaged=damaged,
            ):
                log.info("stored the index of corpus version %s for the other processes", state.version)
            snapshot = self._swap(state, index)
        self._prune_indexes(state.version)  # this machine's cache keeps the newest versions only
        return snapshot

    @contextlib.contextmanager
    def _consistent_view(self) -> Iterator[tuple[StoreWriter, CorpusState]]:
        """One REPEATABLE READ view of a shared database's rows, and the corpus version they make."""
        with self.store.writer() as writer:
            writer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            meta = dict(
                writer.execute(
                    "SELECT key, value FROM meta WHERE key IN ('corpus_version', 'corpus_stamp')"
                ).fetchall()
            )
            yield writer, CorpusState(int(meta.get("corpus_version") or 0), meta.get("corpus_stamp") or "")

    def _open_in_memory(self, why: StoreError) -> Snapshot:
        """``open`` on a shared database when this machine has no room for the index: built from the rows and
        held in memory, the texts read from the database (no room for a local copy either)."""
        with self._consistent_view() as (writer, state):
            index = self._build_index()
        log.warning("serving corpus version %s from an index held in memory: %s", state.version, why)
        return self._swap(state, index, corpus_copy=False)

    def _build_shared(self) -> tuple[CorpusState, BM25Index | None]:
        """Build, save and load the index of a shared database's current corpus, with the local copy of its
        articles and passages, both from one consistent view of the rows."""
        with self._consistent_view() as (writer, state):
            index = self._build_index(writer)
            if index is None:
                return state, None
            folder = self._new_folder(state)
            try:
                self._write_index(index, state, folder)
                self._write_corpus_copy(writer, state, folder)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        self._install(folder, state)
        return state, self._load_index(state)

    def _write_corpus_copy(self, writer: Any, state: CorpusState, folder: Path) -> None:
        from .corpus_copy import write_corpus_copy
        from .pg_sync import stream_rows

        end_pipeline = getattr(writer, "end_pipeline", None)
        if end_pipeline is not None:
            end_pipeline()  # the rows are read through server-side cursors, which do not run in pipeline mode
        conn = writer.connection
        try:
            write_corpus_copy(lambda sql: stream_rows(conn, sql), folder, state)
        except OSError as exc:
            raise StoreError(f"cannot write the local copy of the corpus: {exc.strerror or exc}") from exc

    def _publish(self, writer: Any, state: CorpusState, folder: Path) -> None:
        """In the ingest's transaction on a shared database: the local copy of the corpus beside the new
        index in ``folder``, and the whole folder stored in the database, visible to others when the version
        commits."""
        from .pg_sync import upload_snapshot

        self._write_corpus_copy(writer, state, folder)
        started = time.perf_counter()
        stored = upload_snapshot(writer.connection, state.version, state.stamp, folder)
        log.info(
            "stored the index of corpus version %s (%.1f MB) in %.2f s",
            state.version,
            stored.total_bytes / 1e6,
            time.perf_counter() - started,
        )

    @property
    def _shared(self) -> bool:
        """True for a shared server database (PostgreSQL)."""
        return getattr(self.store, "backend", "sqlite") == "postgres"

    def _swap(self, state: CorpusState, index: BM25Index | None, *, corpus_copy: bool = True) -> Snapshot:
        """Serve ``index`` from now on; on a shared database with the corpus copy beside it (without
        ``corpus_copy``, the texts are read from the database)."""
        reader = None
        if self._shared and index is not None and corpus_copy:
            from .corpus_copy import open_corpus_copy

            reader = open_corpus_copy(self._index_dir(state))
        snapshot = Snapshot(state.version, index, time.time(), state.stamp, reader)
        with self._swap_lock:
            # One reference assignment: readers see the old or the new snapshot, whole.
            old, self._snapshot = self._snapshot, snapshot
        if old is not None and old.reader is not None:
            old.reader.retire()  # closed once the answers reading it are done
        return snapshot

    @contextlib.contextmanager
    def _held(self, *, load: bool = True) -> Iterator[Snapshot | None]:
        """The snapshot to answer from (loaded first unless ``load`` is false), its corpus copy held open for
        the block: a swap meanwhile closes the old copy only after the answers reading it are done."""
        while True:
            snapshot = self.snapshot if load else self._snapshot
            copy = snapshot.reader if snapshot is not None else None
            if copy is None or copy.acquire():
                break
            if self._snapshot is snapshot:  # retired, yet still the current one: close() retired it
                raise StoreError("newsdesk is shutting down")
            # else a swap retired it just now: take the new snapshot
        try:
            yield snapshot
        finally:
            if copy is not None:
                copy.release()

    def _corpus(self, snapshot: Snapshot | None) -> Store:
        """Where a snapshot's articles and passages are read: the local copy beside the index on a shared
        database, else the store."""
        return snapshot.reader if snapshot is not None and snapshot.reader is not None else self.store

    @property
    def snapshot(self) -> Snapshot:
        snapshot = self._snapshot
        return snapshot if snapshot is not None else self.open()

    def _build_index(self, writer: StoreWriter | None = None) -> BM25Index | None:
        """The index of the store's passages (as the writer connection sees them), or None when there are none.
        Pass the open transaction's ``writer``, if any: the passages' size is read through it."""
        size_sql = "SELECT coalesce(sum(length(text)), 0) FROM passages"
        text_chars = int(
            (writer.execute(size_sql).fetchone() if writer else self.store.query(size_sql)[0])[0]
        )
        rows = self.store.index_docs_rows()
        first = next(rows, None)
        if first is None:
            return None
        # Rows are (passage_id, article_id, title, text, published, content_hash): IndexDoc's fields in order.
        docs = itertools.starmap(IndexDoc, itertools.chain([first], rows))
        # An archive whose passages are clearly too large for their layouts to be kept never builds them; its
        # passages are analysed in worker processes beside this one.
        return BM25Index.build(
            docs, self.analyzer, layout=layouts_fit(text_chars), workers=self.ingest_workers
        )

    def _new_folder(self, state: CorpusState) -> Path:
        """A temporary folder beside the version folders, where this process writes the index of ``state``
        before ``_install`` renames it into place."""
        return self.index_root / f".v{state.version}.build-{uuid.uuid4().hex[:8]}"

    def _save_index(self, index: BM25Index, state: CorpusState) -> None:
        folder = self._new_folder(state)
        try:
            self._write_index(index, state, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._install(folder, state)

    def _write_index(self, index: BM25Index, state: CorpusState, folder: Path) -> None:
        try:
            self.index_root.mkdir(parents=True, exist_ok=True)
            index.save(folder)
            if state.stamp:
                (folder / STAMP_FILE).write_text(state.stamp, encoding="ascii")
        except OSError as exc:
            # numpy reports a short write ("N requested and M written") without an errno: the disk is full.
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) or (exc.errno is None and "written" in str(exc)):
                raise StoreError(f"the disk holding the search index {self.index_root} is full") from exc
            raise StoreError(
                f"cannot write the search index {self._index_dir(state)}: {exc.strerror or exc}"
            ) from exc

    def _install(self, folder: Path, state: CorpusState) -> None:
        """Rename the finished ``folder`` into the place of ``state``'s version, whole, in one step. Other
        processes on this machine may share the folders (one index cache): when one of them put that version
        there first, its folder is kept and ``folder`` discarded. A stale or damaged one (another database's,
        another format's) is set aside first."""
        target = self._index_dir(state)
        try:
            for _ in range(3):
                try:
                    os.rename(folder, target)
                    return
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                if self._complete(target, state):
                    return  # another process won the race: use theirs
                _discard(target)
            raise StoreError(f"cannot put the search index in place at {target}: it keeps being replaced")
        except OSError as exc:
            raise StoreError(f"cannot write the search index {target}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _complete(self, folder: Path, state: CorpusState) -> bool:
        """Whether ``folder`` holds a whole index of ``state`` in this newsdesk's format (the arrays are checked
        when it is loaded)."""
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            stamp = (folder / STAMP_FILE).read_text(encoding="ascii").strip() if state.stamp else ""
        except (OSError, ValueError):
            return False
        from .corpus_copy import CORPUS_FILE

        return (
            isinstance(manifest, dict)
            and manifest.get("version") == INDEX_FORMAT_VERSION
            and stamp == state.stamp
            and (not self._shared or (folder / CORPUS_FILE).is_file())
        )

    def _prune_indexes(self, keep: int) -> None:
        if not self.index_root.exists():
            return
        versions = sorted(
            (
                int(p.name[1:])
                for p in self.index_root.iterdir()
                if p.name.startswith("v") and p.name[1:].isdigit()
            ),
            reverse=True,
        )
        for version in versions[KEEP_INDEX_VERSIONS:]:
            if version != keep:
                _discard(self.index_root / f"v{version}")
        _remove_leftovers(self.index_root)

    def keep_newest(self) -> int:
        """Read the newest articles' rows ahead into what the version served keeps (``CorpusRows.keep``): the
        article, its passages' ordinals and texts, in three queries per 20 articles; then their passages'
        layouts from the index (``BM25Index.keep_layouts``). A search process does this
        before it answers, at start and after following a reload, so that questions about them read no row (all
        of BBC News: a sixth to a third less CPU a question in bursts, ``bench/RESULTS.md``). Returns how many
        articles."""
        with self._held() as snapshot:
            if snapshot is None or snapshot.index is None:
                return 0
            corpus = self._corpus(snapshot)
            newest = corpus.headlines(articles_ahead())
            articles = snapshot.index.passage_ids_of(a.id for a in newest)
            read = snapshot.rows.keep(corpus, articles, past_end=QUOTE_FOLLOWING)
            snapshot.index.keep_layouts(read)
            return len(read)

    def process_config(self) -> dict[str, Any]:
        """How a second process opens this service's database and index read-only (``search_process``)."""
        return {
            "db_path": self.db_path,
            "corpus_dir": self.corpus_dir,
            "language": self.analyzer.language,
            "max_article_bytes": self.max_article_bytes,
            "links": self.links,
            "index_root": self.index_root,
            "max_question_chars": self.max_question_chars,
            "max_file_bytes": self.max_file_bytes,
            "create": False,
            "ingest_workers": 0,
            "builds_index": False,
        }

    def serving(self) -> tuple[int, str] | None:
        """The corpus version and stamp answered from now, or None before the first load."""
        snapshot = self._snapshot
        return None if snapshot is None else (snapshot.version, snapshot.stamp)

    def refresh_if_changed(self) -> bool:
        """Pick up a reload made by another process. True when a new snapshot was swapped in.

        A database file replaced by a copy renamed into place (how readers on other machines receive a
        new corpus) is reopened first."""
        if not self._reload_lock.locked() and self._db_file_replaced():
            try:
                replacement = open_store(self.db_path, create=False)
            except StoreError as exc:
                log.warning("the database file was replaced but cannot be opened yet: %s", exc)
                return False
            old, self.store, self._db_identity = self.store, replacement, self._file_identity()
            old.close()
        try:
            state = self.store.corpus_state()
        except StoreError as exc:
            self._database_failed(exc)
            return False
        self._database_answered()
        current = self._snapshot
        if current is not None and (current.version, current.stamp) == (state.version, state.stamp):
            return False
        if self._reload_lock.locked():
            return False  # this process is reloading; it swaps when done
        self.open()
        return True

    def _file_identity(self) -> tuple[int, int] | None:
        if not isinstance(self.db_path, Path):
            return None  # a PostgreSQL database: no file to be replaced
        try:
            st = self.db_path.stat()
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _db_file_replaced(self) -> bool:
        identity = self._file_identity()
        return identity is not None and identity != self._db_identity

    # -- reload --------------------------------------------------------------------------------
    @property
    def reloading(self) -> bool:
        return self._reload_lock.locked()

    def reload(
        self,
        *,
        progress: Progress | None = None,
        rebuild: bool = False,
        trigger: str = "cli",
        in_child: bool | None = None,
        swap: bool = True,
    ) -> IngestSummary:
        """Re-scan the corpus folder, ingest what changed, rebuild the index aside and swap.

        With ``in_child`` (default: the service's ``reload_in_child``) the ingest and the index build run in a
        child process (``reload_process``) and this process only loads the new version's index and swaps it
        in: a server's threads keep the interpreter to themselves.
        With ``swap=False`` the new index is built and saved but not loaded here (the child's side).

        Raises ReloadInProgress when another reload runs, CorpusError/StoreError when nothing could be
        done; in every failure the previous snapshot keeps serving."""
        if not self._reload_lock.acquire(blocking=False):
            raise ReloadInProgress("a reload is already running; wait for it to finish")
        try:
            if self.reload_in_child if in_child is None else in_child:
                return self._reload_in_child(progress=progress, rebuild=rebuild, trigger=trigger)
            built: dict[int, CorpusState] = {}

            def build_before_commit(state: CorpusState, writer: StoreWriter) -> None:
                index = self._build_index(writer)
                if index is not None:
                    folder = self._new_folder(state)
                    try:
                        self._write_index(index, state, folder)
                        if self._shared:
                            self._publish(writer, state, folder)
                    except BaseException:
                        shutil.rmtree(folder, ignore_errors=True)
                        raise
                    self._install(folder, state)
                built[state.version] = state

            try:
                summary = ingest_folder(
                    self.store,
                    self.corpus_dir,
                    max_article_bytes=self.max_article_bytes,
                    max_file_bytes=self.max_file_bytes,
                    workers=self.ingest_workers,
                    progress=progress,
                    before_commit=build_before_commit,
                    rebuild=rebuild,
                    trigger=trigger,
                )
            except Exception as exc:
                for state in built.values():  # the transaction rolled back: its index must not be picked up
                    _discard(self._index_dir(state))
                self.last_reload = ReloadStatus(ok=False, at=time.time(), error=str(exc))
                raise
            if self._shared and built:
                from .pg_sync import prune_stored_snapshots

                prune_stored_snapshots(self.store_connection)
            if not swap:
                self._prune_indexes(summary.corpus_version)
            elif (
                summary.corpus_version in built
                or self._snapshot is None
                or (self._snapshot.version != summary.corpus_version)
            ):
                self.open()
                self._prune_indexes(summary.corpus_version)
            self.last_reload = ReloadStatus(ok=True, at=time.time(), summary=summary)
            return summary
        finally:
            self._reload_lock.release()

    def _reload_in_child(self, *, progress: Progress | None, rebuild: bool, trigger: str) -> IngestSummary:
        from .reload_process import reload_in_child

        try:
            summary = reload_in_child(
                db_path=self.db_path,
                corpus_dir=self.corpus_dir,
                index_root=self.index_root,
                language=self.analyzer.language,
                max_article_bytes=self.max_article_bytes,
                max_file_bytes=self.max_file_bytes,
                ingest_workers=self.ingest_workers,
                progress=progress,
                rebuild=rebuild,
                trigger=trigger,
            )
        except Exception as exc:
            self.last_reload = ReloadStatus(ok=False, at=time.time(), error=str(exc))
            raise
        if self._snapshot is None or self._snapshot.version != summary.corpus_version:
            self.open()  # the child saved this version's index: loading it maps the files, nothing more
        self.last_reload = ReloadStatus(ok=True, at=time.time(), summary=summary)
        return summary

    def ensure_corpus(self, progress: Progress | None = None) -> IngestSummary | None:
        """On first start with an empty database, ingest the corpus folder."""
        if self.store.counts()["articles"] == 0 and self.store.last_run() is None:
            return self.reload(progress=progress, trigger="first start")
        return None

    # -- questions -----------------------------------------------------------------------------
    def search(
        self,
        question: str,
        *,
        k: int = 5,
        offset: int = 0,
        since: date | None = None,
        until: date | None = None,
        per_article: int = 2,
        context: Sequence[str] = (),
    ) -> Answer:
        """The ``k`` best answers after ``offset``. ``context``: earlier questions (oldest first) that a
        follow-up refers to; they steer the search while the question's own words lead."""
        text = clean_question(question, max_chars=self.max_question_chars)
        earlier = [c for c in (_clean_context(c, self.max_question_chars) for c in context) if c]
        # Loaded outside the timing (the first question after start pays it once), and held to the end.
        with self._held() as snapshot:
            assert snapshot is not None
            return self._answer(
                snapshot,
                text,
                earlier,
                k=k,
                offset=offset,
                since=since,
                until=until,
                per_article=per_article,
            )

    def _answer(
        self,
        snapshot: Snapshot,
        text: str,
        earlier: list[str],
        *,
        k: int,
        offset: int,
        since: date | None,
        until: date | None,
        per_article: int,
    ) -> Answer:
        index = snapshot.require_index()
        corpus = self._corpus(snapshot)  # the texts of the version this index was built from
        started = time.perf_counter()
        plan = plan_query(build_query(text, index.analyzer, context=earlier), index, self._speller(index))
        query = plan.query
        wanted = offset + k + 1  # one more than shown says exactly whether another page exists
        ranking = index.search(
            query.terms, k=max(2 * wanted, POOL), since=since, until=until, per_article=per_article
        )
        hits = ranking.hits
        present = index.terms_in_articles(query.terms, (h.article_id for h in hits))
        candidates = rerank(hits, query, index.idf, present)
        # One result per article, its quote chosen around the passages of it the search found.
        rows = snapshot.rows
        ordinals = rows.passage_ordinals(corpus, [c.hit.passage_id for c in candidates])
        centers: dict[str, list[int]] = {}
        ranked = []
        for c in candidates:
            ordinal = ordinals.get(c.hit.passage_id)
            if ordinal is None:
                continue  # removed by a reload that committed a moment ago
            if c.hit.article_id not in centers:
                ranked.append(c)
            centers.setdefault(c.hit.article_id, []).append(ordinal)
        judged = verdict(query, index.idf, plan.unknown, ranked, archive_passages=index.n_passages)
        shown = ranked[offset : offset + k]
        articles = rows.articles_by_id(corpus, [c.hit.article_id for c in shown])
        # The passages a quote may come from: those found, the ones after the best found, and the article's
        # first (what choose_quote reads; the second quote comes from one of those found). A corrected word
        # is shown as the first of the passages near those found writes it.
        after = range(QUOTE_FOLLOWING + 1)
        passages = rows.passages_at(
            corpus,
            {
                aid: {0, *centers[aid][:QUOTE_CENTERS]}
                | {o + d for o in centers[aid][: QUOTE_CENTERS if plan.corrections else 1] for d in after}
                for aid in articles
            },
        )
        words = surface_words(text, index.analyzer)
        numbers = index.term_numbers(query.terms)
        weights = quote_weights(query, index.idf)  # the same for each quote of the question
        results: list[Result] = []
        for c in shown:
            article = articles.get(c.hit.article_id)
            if article is None:
                continue
            found = centers[article.id][:QUOTE_CENTERS]
            texts = passages.get(article.id, [])

            def layout(ordinal: int, passage: str, article_id: str = article.id) -> Sentences | None:
                return index.passage_sentences(article_id, ordinal, passage, numbers)

            laid_out: dict = {}  # the article's sentences as its first quote found them, for its second
            quote = choose_quote(
                texts,
                found,
                query,
                index.analyzer,
                idf=index.idf,
                following=QUOTE_FOLLOWING,
                layout=layout,
                weights=weights,
                laid_out=laid_out,
            )
            # A second passage the search found, away from the first quote, gives a second quote.
            others = [o for o in found if all(abs(o - q) > 1 for q in quote.ordinals)]
            if SECOND_QUOTE and others and quote.score is not None:
                second = choose_quote(
                    texts,
                    others[:1],
                    query,
                    index.analyzer,
                    idf=index.idf,
                    following=0,
                    lead=False,
                    layout=layout,
                    weights=weights,
                    laid_out=laid_out,
                )
                if second.score is not None:
                    quote = join_quotes(quote, second)
            missing = tuple(words.get(t, t) for t in judged.distinctive if t not in c.present)
            results.append(
                Result(
                    article_id=article.id,
                    title=article.title,
                    published=article.published,
                    url=self.article_url(article, quote.ordinal),
                    ordinal=quote.ordinal,
                    passage=quote.passage,
                    excerpt=quote.excerpt,
                    score=c.hit.score,
                    missing=missing,
                )
            )
        took_ms = (time.perf_counter() - started) * 1000
        return Answer(
            question=text,
            took_ms=took_ms,
            no_match=judged.no_match or not results,
            results=results,
            total=ranking.total,
            offset=offset,
            has_more=len(ranked) > offset + k and bool(results),
            corrections=[
                (words.get(c.term, c.term), _corrected_word(c, passages, index)) for c in plan.corrections
            ],
            context=tuple(earlier),
        )

    def _speller(self, index: BM25Index) -> Speller:
        """The spelling corrector over ``index``'s vocabulary, built once per index."""
        cached = self._spellers
        if cached is None or cached[0] is not index:
            cached = self._spellers = (index, Speller(index.vocabulary(), index.passage_counts))
        return cached[1]

    def article_url(self, article: StoredArticle, ordinal: int | None = None) -> str | None:
        return self.links.url_for(
            article_id=article.id,
            url=article.url,
            source=article.source,
            published=article.published,
            category=article.category,
            ordinal=ordinal,
        )

    def headlines(
        self,
        n: int = 10,
        *,
        offset: int = 0,
        query: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[Headline]:
        """Newest first. With ``query``, only articles that match it (BM25) are listed, still newest first."""
        ids = None
        text = clean_question(query, max_chars=self.max_question_chars) if query else None
        with self._held(load=text is not None) as snapshot:
            if text is not None:
                index = snapshot.index if snapshot is not None else None
                if index is None:
                    return []
                ranking = index.search(text, k=200, per_article=1)
                ids = [] if ranking.no_match else [h.article_id for h in ranking.hits]
            rows = self._corpus(snapshot).headlines(n, offset=offset, since=since, until=until, ids=ids)
        return [Headline(a.id, a.title, a.published, self.article_url(a), a.category) for a in rows]

    def article(self, article_id: str) -> tuple[StoredArticle, list[tuple[int, str]]] | None:
        with self._held(load=False) as snapshot:
            corpus = self._corpus(snapshot)
            article = corpus.article(article_id)
            if article is None:
                return None
            return article, corpus.passages_for_article(article_id)

    def known_article_ids(self, article_ids: Iterable[str]) -> set[str]:
        """Which of ``article_ids`` are in the archive (related items may name articles it lacks)."""
        ids = list(article_ids)
        if not ids:
            return set()
        with self._held(load=False) as snapshot:
            return set(self._corpus(snapshot).articles_by_id(ids))

    def matched_spans(self, question: str, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """For each text, the (start, end) spans of the words that match one of the question's terms."""
        terms = set(self.analyzer.terms(question))
        if not terms:
            return [[] for _ in texts]
        return [[(s, e) for s, e, term in self.analyzer.term_spans(text) if term in terms] for text in texts]

    def stats(self) -> ServiceStats:
        snapshot = self._snapshot
        try:
            if snapshot is not None and not self.database_status().reachable:
                # Known to be down: answer at once (the version watcher finds out when it is back).
                raise _KnownDown()
            with self._held(load=False) as held:
                counts = self._corpus(held).counts()
            run = self.store.last_run()
            version = snapshot.version if snapshot else self.store.corpus_version()
        except (StoreError, _KnownDown) as exc:
            # The database does not answer: report what this process serves, from the index it loaded.
            if snapshot is None:
                raise
            if isinstance(exc, StoreError):
                self._database_failed(exc)
            index = snapshot.index
            counts = {
                "articles": index.n_articles if index else 0,
                "passages": index.n_passages if index else 0,
            }
            run, version = self._last_run_seen, snapshot.version
        else:
            self._database_answered()
            self._last_run_seen = run
        return ServiceStats(
            articles=counts["articles"],
            passages=counts["passages"],
            corpus_version=version,
            index_loaded_at=snapshot.loaded_at if snapshot else None,
            uptime_seconds=round(time.time() - self.started_at, 1),
            last_run=IngestRun.from_row(run) if run else None,
            last_reload=self.last_reload,
            reloading=self.reloading,
            database=self.database_status(),
        )

    # -- several processes on one database -----------------------------------------------------
    def listen_for_versions(
        self, on_change: Callable[[int | None], None], *, poll_every: float
    ) -> VersionListener | None:
        """On a shared PostgreSQL database, start hearing new corpus versions as they are committed:
        ``on_change`` is called in the listener's thread (see ``pg_sync.VersionListener``; with None when the
        caller should check the version itself). Returns None for an SQLite file, which the caller polls."""
        url = self._database_url()
        if url is None:
            return None
        from .pg_sync import VersionListener

        store = cast("PostgresStore", self.store)

        def heard(version: int | None) -> None:
            if not listener.connected:
                store.mark_unreachable()  # its calls fail fast until one is answered again
            on_change(version)

        listener = VersionListener(url, heard, poll_every=poll_every)
        self._listener = listener.start()
        return listener

    @contextlib.contextmanager
    def store_connection(self) -> Iterator[Any]:
        """A connection from the shared database's pool (index snapshots travel through it)."""
        with cast("PostgresStore", self.store).connection() as conn:
            yield conn

    def _database_url(self) -> str | None:
        """The PostgreSQL URL of a shared database; None for an SQLite file."""
        return str(self.db_path) if self._shared else None

    # -- the database's health -----------------------------------------------------------------
    def database_status(self) -> DatabaseStatus:
        """Whether the database answers, as this process last found it (its own calls, and the connection
        that hears new versions on a shared database)."""
        down = self._db_down
        if down is not None:
            if getattr(self.store, "answered_at", 0.0) <= self._db_failed_at:
                return down
            self._database_answered()  # a call made since (a settings check, another thread's) was answered
        listener = self._listener
        if (
            listener is not None
            and not listener.connected
            and listener.last_error
            and (listener.disconnected_since or 0) > self._db_answered_at  # nothing answered since
        ):
            return DatabaseStatus(False, listener.last_error, listener.disconnected_since)
        return DatabaseStatus()

    def _database_failed(self, exc: BaseException) -> None:
        if self._database_url() is None:
            return  # an SQLite file is busy (a reload writing) or damaged, not unreachable: the error says which
        error = " ".join(str(exc).split()) or type(exc).__name__
        # The details (host, address, role) go to the log only; /about and /healthz show a fixed reason.
        public = PUBLIC_DATABASE_ERROR
        with self._db_status_lock:
            self._db_failed_at = time.time()
            if self._db_down is None:
                log.warning("the database does not answer (%s); answering from the loaded index", error)
                self._db_down = DatabaseStatus(False, public, time.time())
            else:
                self._db_down = DatabaseStatus(False, public, self._db_down.since)

    def _database_answered(self) -> None:
        self._db_answered_at = time.time()
        with self._db_status_lock:
            if self._db_down is not None:
                log.info("the database answers again")
                self._db_down = None

    # -- feedback ------------------------------------------------------------------------------
    def add_feedback(
        self,
        *,
        guild_id: str | None,
        channel_id: str | None,
        user_id: str,
        question: str,
        article_ids: list[str],
        vote: int,
    ) -> None:
        """Record a member's 👍 (``vote`` > 0) or 👎 (< 0) on an answer. Returns only once it is stored;
        raises StoreError when it could not be."""
        try:
            self.store.add_feedback(
                guild_id=guild_id,
                channel_id=channel_id,
                user_id=user_id,
                question=question,
                article_ids=article_ids,
                vote=vote,
            )
        except StoreError as exc:
            self._database_failed(exc)
            raise
        self._database_answered()

    def feedback_summary(self, limit: int = 10) -> FeedbackSummary:
        latest, worst = self.store.feedback_summary(limit)
        return FeedbackSummary(
            latest=[RatedAnswer(r["created_at"], r["question"], r["article_ids"]) for r in latest],
            worst=worst,
        )

    @property
    def server_settings(self) -> ServerSettingsTable:
        """Per-server settings, kept in the same database; reloads never touch them."""
        return ServerSettingsTable(self.store)  # the current store: it is reopened when the file is replaced

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        snapshot = self._snapshot
        if snapshot is not None and snapshot.reader is not None:
            snapshot.reader.retire()  # closed once the answers reading it are done
        self.store.close()


def _remove_leftovers(index_root: Path, *, older_than: float = LEFTOVER_SECONDS) -> None:
    """Delete what a process that died left beside the version folders: a half-written build or download
    (``.vN.build-*``, ``.vN.download-*``) or a folder it was deleting (``.vN.old-*``). Those of a process at
    work are minutes old at most, so only folders untouched for ``older_than`` seconds go."""
    cutoff = time.time() - older_than
    for path in index_root.glob(".v*"):
        if not any(mark in path.name for mark in (".build-", ".download-", ".old-")):
            continue
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue  # gone already


def _discard(folder: Path) -> None:
    """Delete an index folder without ever leaving it half deleted where a process could load it: it is
    renamed aside first, in one step. A process that mapped its files keeps them until it lets go."""
    aside = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(folder, aside)
    except FileNotFoundError:
        return  # gone already (another process discarded it)
    except OSError:
        aside = folder
    shutil.rmtree(aside, ignore_errors=True)


def set_aside_damaged_database(db_path: str | Path) -> Path | None:
    """For ``ingest --rebuild``: a damaged newsdesk database is renamed to ``FILE.damaged`` (with its
    ``-wal`` and ``-shm``), so that a new one can be built in its place. Returns where it went, or None
    when there is nothing to move (no file, a database that opens fine, or an obstacle such as an empty
    file that the ingest itself reports). A file that is not a newsdesk database is never moved: this
    raises NotNewsdeskDatabase. A PostgreSQL database is never moved: this returns None."""
    if is_database_url(db_path):
        return None
    db_path = Path(db_path)
    if not db_path.exists():
        return None
    try:
        open_store(db_path, create=False).close()
    except NotNewsdeskDatabase:
        raise
    except DamagedDatabase:
        aside = db_path.with_name(db_path.name + ".damaged")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(db_path) + suffix)
            if part.exists():
                part.replace(Path(str(aside) + suffix))
        return aside
    except StoreError:
        return None  # e.g. an empty file: the ingest itself reports whatever stands in its way
    return None
