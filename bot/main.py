"""Start the Discord bot: settings checked, corpus loaded (ingested on first start), then connect."""

from __future__ import annotations

import asyncio
import logging
import sys

import aiohttp
import discord

from retrieval import NewsdeskError, NewsService

from .client import build_bot
from .config import Settings
from .logs import setup_logging
from .wiring import open_service

log = logging.getLogger("newsdesk")


async def start_bot(settings: Settings, service: NewsService) -> None:
    if not settings.token:
        raise NewsdeskError("DISCORD_TOKEN is not set: put the bot token in .env or the environment")
    bot = build_bot(settings, service)
    async with bot:
        await bot.start(settings.token)


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
        asyncio.run(start_bot(settings, service))
    except discord.LoginFailure:
        print(
            "newsdesk: Discord refused the token in DISCORD_TOKEN; copy it again from the developer portal "
            "(Bot > Reset Token)",
            file=sys.stderr,
        )
        return 2
    except discord.PrivilegedIntentsRequired:
        print(
            "newsdesk: NEWSDESK_QA_CHANNELS needs the Message Content intent: enable it in the developer portal "
            "(Bot > Privileged Gateway Intents), or leave NEWSDESK_QA_CHANNELS empty",
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
