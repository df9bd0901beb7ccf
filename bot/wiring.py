"""From settings to a running service: the one place the bot, the CLI and the web pages open it, and the
one watcher that picks up a corpus reloaded by another process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from retrieval import NewsdeskError, NewsService

from .config import Settings

log = logging.getLogger(__name__)


def open_service(
    settings: Settings,
    *,
    db: str | Path | None = None,
    corpus_dir: str | Path | None = None,
    create: bool = True,
    reload_in_child: bool = False,
) -> NewsService:
    """The service over ``settings.db`` (an SQLite file or a PostgreSQL URL) and ``settings.corpus_dir`` (or
    the ``db`` and ``corpus_dir`` given on a command line), with the settings' language, limits and links. ``create=False`` is for commands
    that only read: they open an existing newsdesk database and never write into any other file.
    ``reload_in_child=True`` is for the bot: its reloads run in a child process."""
    return NewsService(
        db or settings.db,
        Path(corpus_dir) if corpus_dir else settings.corpus_dir,
        language=settings.language,
        max_article_bytes=settings.max_article_bytes,
        max_file_bytes=settings.max_file_bytes,
        ingest_workers=settings.ingest_workers,
        links=settings.link_policy(),
        max_question_chars=settings.max_question,
        create=create,
        reload_in_child=reload_in_child,
        index_cache=settings.index_cache,
    )


SAFETY_POLL = 60.0  # with a listener, the version is still read this often, in case a notification was missed


async def watch_corpus_version(
    service: NewsService, every: float, *, running: Callable[[], bool] = lambda: True
) -> None:
    """Swap in a reload made by another process (``newsdesk ingest``, another bot process's ``/reload``, a
    database file copied into place). Start it with ``tasks.spawn``.

    On a shared PostgreSQL database the service hears each new version as it is committed and this swaps at
    once; while that connection is down the listener asks for a check every ``every`` seconds (polling is the
    fallback). On an SQLite file this checks every ``every`` seconds."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def heard(_version: int | None) -> None:  # in the listener's thread
        with contextlib.suppress(RuntimeError):  # the event loop closed: the bot is stopping
            loop.call_soon_threadsafe(wake.set)

    listener = await asyncio.to_thread(service.listen_for_versions, heard, poll_every=every)
    wait = every if listener is None else max(every, SAFETY_POLL)
    try:
        while running():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait)
            wake.clear()
            if not running():
                break
            try:
                if await asyncio.to_thread(service.refresh_if_changed):
                    log.info("picked up corpus version %s", service.snapshot.version)
            except NewsdeskError as exc:
                log.warning("could not load the new corpus version (%s); still serving the previous one", exc)
            except Exception:
                log.exception("could not load the new corpus version; still serving the previous one")
    finally:
        if listener is not None:
            await asyncio.to_thread(listener.stop)
