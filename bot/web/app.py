"""The read-only web app: the search page, one page per article, and a health check.

Every database or index call runs in a worker thread, never on the event loop. Article ids come from
the URL (decoded, slashes allowed) and are only ever looked up in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from retrieval import EmptyArchive, IngestRun, NewsdeskError, NewsService, QuestionError, clean_question

from ..tasks import spawn
from ..wiring import watch_corpus_version
from . import pages

log = logging.getLogger(__name__)

HEADLINES = 10
MAX_ID_CHARS = 1000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

SERVICE = web.AppKey("service", NewsService)
Status = Callable[[], dict[str, Any]]  # what the bot adds to /healthz
STATUS = web.AppKey[Status | None]("status")
RESULTS = web.AppKey("results", int)


def root_for(request: web.Request) -> str:
    """The site's root relative to the requested page, so that links work behind a path prefix too."""
    depth = request.raw_path.split("?", 1)[0].count("/") - 1
    return "../" * depth if depth > 0 else "./"


def _html(text: str, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=headers)


def _not_found(request: web.Request, message: str = "There is no page at this address.") -> web.Response:
    return _html(pages.message_page(404, "Not found", message, root=root_for(request)), status=404)


# -- pages ---------------------------------------------------------------------------------------
async def search(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    query = request.query.get("q")
    k = request.app[RESULTS]

    def work():
        answer = error = None
        status = 200
        if query is not None:
            try:
                answer = service.search(query, k=k)
            except QuestionError as exc:
                error, status = str(exc), 400
            except EmptyArchive as exc:  # not the asker's fault: the page says so, with 200
                error = str(exc)
        return answer, error, status, service.headlines(HEADLINES)

    answer, error, status, headlines = await asyncio.to_thread(work)
    shown = answer.question if answer is not None else (query.strip()[:200] if query else None)
    body = pages.search_page(
        root=root_for(request),
        query=shown,
        answer=answer,
        headlines=headlines,
        error=error,
        public_url=service.links.public_url,
    )
    return _html(body, status=status)


def _article_view(service: NewsService, article_id: str, query: str | None) -> dict | None:
    found = service.article(article_id)
    if found is None:
        return None
    article, passages = found
    question = None
    marks: dict[int, list[tuple[int, int]]] = {}
    title_marks: list[tuple[int, int]] = []
    if query:
        try:
            question = clean_question(query, max_chars=service.max_question_chars)
        except QuestionError:
            question = None
    if question:
        title_marks, *passage_marks = service.matched_spans(
            question, [article.title] + [t for _, t in passages]
        )
        marks = {ordinal: spans for (ordinal, _), spans in zip(passages, passage_marks, strict=True) if spans}
    known = service.known_article_ids(item.id for item in article.related)
    return {
        "article": article,
        "passages": passages,
        "query": question,
        "marks": marks,
        "title_marks": title_marks,
        "known_related": known,
    }


async def article(request: web.Request) -> web.Response:
    article_id = request.match_info["id"]
    if len(article_id) > MAX_ID_CHARS or "\x00" in article_id:
        return _not_found(request, "There is no article with that id in the archive.")
    view = await asyncio.to_thread(_article_view, request.app[SERVICE], article_id, request.query.get("q"))
    if view is None:
        return _not_found(request, "There is no article with that id in the archive.")
    return _html(pages.article_page(root=root_for(request), **view))


async def healthz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        stats = await asyncio.to_thread(service.stats)
    except Exception as exc:  # the database went away or is damaged: say so, do not crash the check
        log.warning("health check failed: %s", exc)
        return web.json_response({"status": "error", "error": str(exc)}, status=503)
    payload = {
        # "degraded": the database does not answer; questions are still answered from the loaded index
        "status": "ok" if stats.database.reachable else "degraded",
        "database": stats.database.to_json(),
        "corpus_version": stats.corpus_version,
        "articles": stats.articles,
        "passages": stats.passages,
        "last_reload": stats.last_reload.to_json() if stats.last_reload else _run_summary(stats.last_run),
        "reloading": stats.reloading,
        "index_loaded_at": stats.index_loaded_at,
        "uptime_seconds": stats.uptime_seconds,
        "discord_connected": None,
    }
    status = request.app[STATUS]
    if status is not None:
        try:
            payload.update(status())
        except Exception:
            log.exception("the status callback failed")
    return web.json_response(payload)


def _run_summary(run: IngestRun | None) -> dict[str, Any] | None:
    """The latest ingest run recorded in the database (made by any process)."""
    return run.to_json() if run else None


# -- plumbing ------------------------------------------------------------------------------------
@web.middleware
async def error_pages(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _not_found(request)
    except web.HTTPMethodNotAllowed as exc:
        message = "This site only shows pages; it accepts no changes."
        return _html(
            pages.message_page(405, "Method not allowed", message, root=root_for(request)),
            status=405,
            headers={"Allow": exc.headers.get("Allow", "GET, HEAD")},
        )
    except web.HTTPException:
        raise
    except NewsdeskError as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return _html(pages.message_page(503, "Unavailable", str(exc), root=root_for(request)), status=503)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        message = "Something went wrong on our side; please try again."
        return _html(pages.message_page(500, "Server error", message, root=root_for(request)), status=500)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def _watcher(service: NewsService, every: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """Picks up reloads made by another process (``newsdesk ingest``, the bot's ``/reload``)."""

    async def watch(app: web.Application) -> AsyncIterator[None]:
        task = spawn(watch_corpus_version(service, every), name="corpus-version-watch")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return watch


def create_app(
    service: NewsService,
    *,
    status: Status | None = None,
    results: int = 5,
    watch_every: float | None = None,
) -> web.Application:
    """The web app over ``service``. ``status()`` adds to the health check (e.g. ``discord_connected``);
    ``watch_every`` seconds, when given, is how often to look for a corpus reloaded by another process."""
    app = web.Application(middlewares=[error_pages], client_max_size=64 * 1024)
    app[SERVICE] = service
    app[STATUS] = status
    app[RESULTS] = results
    app.router.add_get("/", search)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/articles/{id:.+}", article)
    app.on_response_prepare.append(_security_headers)
    if watch_every:
        app.cleanup_ctx.append(_watcher(service, watch_every))
    return app
