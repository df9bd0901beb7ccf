"""Start the Discord bot: settings checked, corpus loaded (ingested on first start), then connect."""

from __future__ import annotations

import asyncio
import logging
import sys

import aiohttp
import discord

from retrieval.errors import NewsdeskError
from retrieval.service import NewsService

from .client import build_bot
from .config import Settings
from .logs import setup_logging

log = logging.getLogger("newsdesk")


def open_service(settings: Settings) -> NewsService:
    return NewsService(
        settings.db,
        settings.corpus_dir,
        language=settings.language,
        max_article_bytes=settings.max_article_bytes,
        max_file_bytes=settings.max_file_bytes,
        links=settings.link_policy(),
        max_question_chars=settings.max_question,
        reload_in_child=True,  # parsing and the index build never take the interpreter from the bot
    )


async def start_bot(settings: Settings, service: NewsService) -> None:
    bot = build_bot(settings, service)
    async with bot:
        await bot.start(settings.token)


def run_bot(settings: Settings) -> int:
    setup_logging(settings.log_level, secrets=[settings.token] if settings.token else [])
    try:
        service = open_service(settings)
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
