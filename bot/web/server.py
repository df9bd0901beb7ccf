"""Running the web app: inside the bot's event loop (``start_web``) or alone (``newsdesk serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from retrieval import NewsdeskError, NewsService, is_database_url

from ..config import Settings
from ..wiring import open_service
from .app import SECURITY_HEADERS, Status, create_app

log = logging.getLogger(__name__)

EXIT_FAILED = 1


class _RequestHandler(RequestHandler):
    """aiohttp's own error pages (a malformed request never reaches the app) with the same security
    headers as every other page, and one log line instead of a traceback for a client's bad request."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        response = super().handle_error(request, status, exc, message)
        response.headers.update(SECURITY_HEADERS)
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            log.info("bad request refused: %s", " ".join(str(exc).split())[:200])
            return
        super().log_exception(*args, **kwargs)


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _RequestHandler(self, loop=self._loop, **self._kwargs)


class _AppRunner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same server, handing out _RequestHandler
        return server


def _urls(runner: web.AppRunner) -> list[str]:
    urls = []
    for address in runner.addresses:
        host, port = address[0], address[1]
        if ":" in host:
            host = f"[{host}]"
        urls.append(f"http://{host}:{port}/")
    return urls


async def start_web(
    service: NewsService,
    host: str,
    port: int,
    *,
    status: Status | None = None,
    results: int = 5,
    watch_every: float | None = None,
) -> web.AppRunner:
    """Start serving in the running event loop; stop with ``await runner.cleanup()``.

    Raises OSError when the address cannot be bound (port taken, unknown host)."""
    app = create_app(service, status=status, results=results, watch_every=watch_every)
    runner = _AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    log.info("article pages at %s", ", ".join(_urls(runner)))
    return runner


def serve_forever(
    settings: Settings, *, db: str | Path | None = None, host: str | None = None, port: int | None = None
) -> int:
    """``newsdesk serve``: the web pages alone, until Ctrl-C or SIGTERM. Returns the exit status."""
    db_path = db or settings.db
    host = host or settings.web_host
    port = settings.web_port if port is None else port
    if not is_database_url(db_path) and not Path(db_path).exists():
        print(
            f"newsdesk: no database at {db_path}; run `newsdesk ingest` first (or pass --db FILE)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        # serving only reads: never write into a file that is not a newsdesk database
        service = open_service(settings, db=db_path, create=False)
    except NewsdeskError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        service.open()
        return asyncio.run(_serve(service, host, port, settings))
    except NewsdeskError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 0
    finally:
        service.close()


async def _serve(service: NewsService, host: str, port: int, settings: Settings) -> int:
    try:
        runner = await start_web(
            service, host, port, results=settings.results, watch_every=settings.watch_every
        )
    except OSError as exc:
        print(f"newsdesk: cannot serve on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    urls = ", ".join(_urls(runner))
    extra = f" (public address {settings.public_url})" if settings.public_url else ""
    print(f"newsdesk: serving {urls}{extra}; Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    print("newsdesk: stopped", file=sys.stderr, flush=True)
    return 0
