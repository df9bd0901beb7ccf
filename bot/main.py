"""Start the Discord bot: settings checked, corpus loaded (ingested on first start), then connect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable

import aiohttp
import discord

from retrieval import NewsdeskError, NewsService

from .client import build_bot
from .config import Settings
from .logs import setup_logging
from .wiring import open_service

log = logging.getLogger("newsdesk")


async def start_bot(settings: Settings, service: NewsService) -> None:
    """Run the bot until it is closed, Ctrl-C, or SIGTERM (a service manager's stop: systemd, Docker). SIGTERM
    stops it as Ctrl-C does: the gateway session ended (close code 1000, so Discord shows the bot offline at
    once rather than waiting for a resume), search processes stopped, the database closed, exit status 0."""
    if not settings.token:
        raise NewsdeskError("DISCORD_TOKEN is not set: put the bot token in .env or the environment")
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        log.info("SIGTERM: stopping")
        stopping = True
        if main is not None:
            main.cancel()  # as asyncio.Runner does on Ctrl-C: discord.py closes the session on its way out

    with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers here (Windows)
        loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        await _run_bot(settings, service, settings.token)
    except asyncio.CancelledError:
        if not stopping:
            raise


async def _run_bot(settings: Settings, service: NewsService, token: str) -> None:
    bot = build_bot(settings, service)
    if bot.search_processes.go_first():
        log.info("event loop: batch work beside %d search process(es)", bot.search_processes.count)
    try:
        async with bot:
            await bot.start(token)
    except discord.PrivilegedIntentsRequired:
        if settings.message_content != "auto" or settings.qa_channels or not bot.intents.message_content:
            raise  # asked for in the environment: a mistake of whoever runs the bot, reported at once
        # Asked for only because a server admin added a Q&A channel, maybe before the intent was enabled in
        # the developer portal: that must not stop the bot for every server. It runs without, and says why.
        log.warning(
            "Discord refused the Message Content intent, so Q&A channels cannot be read: enable it in the "
            "developer portal (Bot > Privileged Gateway Intents). Running without it; mentions and /ask work."
        )
        intents = bot.intents
        intents.message_content = False
        bot = build_bot(settings, service, intents=intents)
        async with bot:
            await bot.start(token)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (Linux and macOS): the same asyncio API, with its transports,
    timers and callbacks in C, so each answer costs the bot's interpreter less. None: asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_bot(settings: Settings) -> int:
    setup_logging(settings.log_level, secrets=[settings.token] if settings.token else [])
    try:
        # parsing and the index build never take the interpreter from the bot
        service = open_service(settings, reload_in_child=True)
        first = service.ensure_corpus()
        if first is not None:
            log.info("first start: ingested %s: %s", settings.corpus_dir, first.line())
        service.open()
    except NewsdeskError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return 1
    try:
        factory = event_loop_factory()
        log.info("event loop: %s", "uvloop" if factory is not None else "asyncio")
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(start_bot(settings, service))
    except discord.LoginFailure:
        print(
            "newsdesk: Discord refused the token in DISCORD_TOKEN; copy it again from the developer portal "
            "(Bot > Reset Token)",
            file=sys.stderr,
        )
        return 2
    except discord.PrivilegedIntentsRequired:
        wanted_by = (
            "NEWSDESK_MESSAGE_CONTENT=on" if settings.message_content == "on" else "NEWSDESK_QA_CHANNELS"
        )
        print(
            f"newsdesk: {wanted_by} needs the Message Content intent: enable it in the developer portal "
            "(Bot > Privileged Gateway Intents), or set NEWSDESK_MESSAGE_CONTENT=off",
            file=sys.stderr,
        )
        return 2
    except (aiohttp.ClientError, discord.GatewayNotFound, discord.DiscordServerError, TimeoutError) as exc:
        # Unreachable at start (network or DNS down, Discord's outage): one line and exit status 1, so
        # that the service manager restarts newsdesk with its own backoff (systemd Restart=on-failure).
        # Once connected, discord.py reconnects by itself with backoff.
        print(
            f"newsdesk: cannot reach Discord ({_reason(exc)}); check the network and try again",
            file=sys.stderr,
        )
        return 1
    except NewsdeskError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        service.close()
    return 0


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]
