"""Start the real newsdesk bot against the local Discord stub, and read what it sent."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.client import build_bot
from bot.config import Settings
from retrieval.service import NewsService
from tests.discord_stub import DiscordStub

GUILD = 290_000_000_000 << 22
GENERAL = 1_300_000_000_000_000_001
QA = 1_300_000_000_000_000_002
OWNER = 1_400_000_000_000_000_001
READER = 1_400_000_000_000_000_002
OTHER_READER = 1_400_000_000_000_000_003
MANAGER = 1_400_000_000_000_000_004
LISTED_ADMIN = 1_400_000_000_000_000_005
ROLE_ADMIN = 1_400_000_000_000_000_006
MANAGERS_ROLE = 1_500_000_000_000_000_001
EDITORS_ROLE = 1_500_000_000_000_000_002
TOKEN = "stub-bot-token"
MANAGE_GUILD = 0x20
EPHEMERAL = 64


def build_world(stub: DiscordStub) -> None:
    stub.add_guild(GUILD, name="Newsroom", owner_id=OWNER)
    stub.add_channel(GUILD, GENERAL, name="general")
    stub.add_channel(GUILD, QA, name="ask-the-archive")
    stub.add_role(GUILD, MANAGERS_ROLE, name="Managers", permissions=MANAGE_GUILD)
    stub.add_role(GUILD, EDITORS_ROLE, name="Editors", permissions=0)
    stub.add_member(GUILD, READER, name="reader")
    stub.add_member(GUILD, OTHER_READER, name="other")
    stub.add_member(GUILD, MANAGER, name="manager", roles=(MANAGERS_ROLE,))
    stub.add_member(GUILD, LISTED_ADMIN, name="listed")
    stub.add_member(GUILD, ROLE_ADMIN, name="editor", roles=(EDITORS_ROLE,))


def settings_for(service: NewsService, **changes) -> Settings:
    base = Settings(
        token=TOKEN,
        db=service.db_path,
        corpus_dir=service.corpus_dir,
        qa_channels=frozenset({QA}),
        admin_users=frozenset({LISTED_ADMIN}),
        admin_roles=frozenset({EDITORS_ROLE}),
        results=2,
        cooldown=0,
        watch_every=1,
        search_processes=0,  # the bot's own threads answer; tests of the search processes turn them on
    )
    return dataclasses.replace(base, **changes)


@contextlib.asynccontextmanager
async def running_bot(stub: DiscordStub, service: NewsService, **changes) -> AsyncIterator:
    bot = build_bot(settings_for(service, **changes), service, guild_ready_timeout=0.05)
    task = asyncio.create_task(bot.start(TOKEN))
    try:
        await stub.wait_for(lambda: bot.is_ready() or task.done(), timeout=15)
        if task.done():
            task.result()
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


def embed_text(message: dict | None) -> str:
    if not message:
        return ""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [
            embed.get("title") or "",
            embed.get("description") or "",
            (embed.get("footer") or {}).get("text") or "",
        ]
        parts += [f"{f.get('name')}\n{f.get('value')}" for f in embed.get("fields") or []]
    return "\n".join(parts)


def callback_text(record) -> str:
    """What the bot said in its interaction responses (first callback, original message and follow-ups)."""
    parts = []
    for callback in record.callbacks:
        parts.append(embed_text(callback.get("data") or {}))
    parts.append(embed_text(record.original))
    parts += [embed_text(m) for m in record.followups]
    return "\n".join(parts)


def button_ids(message: dict) -> dict[str, str]:
    """label or emoji name -> custom_id of each button on a message."""
    found = {}
    for row in message.get("components") or []:
        for item in row.get("components") or []:
            key = item.get("label") or (item.get("emoji") or {}).get("name")
            found[key] = item.get("custom_id")
    return found


def corpus_file(folder: Path, name: str, title: str, *paragraphs: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(title + "\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return path


def shown(text: str) -> str:
    """Roughly what Discord shows of our Markdown: escapes resolved, bold markers gone."""
    import re

    return re.sub(r"\\(.)", r"\1", text.replace("**", "")).replace("\u2060", "")


def refuse_writes(service: NewsService) -> None:
    """Make the service's database refuse every write from now on, reads still answered: SQLite's
    ``query_only`` on its connection; on PostgreSQL ``default_transaction_read_only`` on the database (a standby,
    or a database an administrator froze), taken by fresh sessions, so the store's pooled ones are replaced."""
    store: Any = service.store
    if store.backend == "sqlite":
        store.db.conn.execute("PRAGMA query_only = 1")
        return
    import psycopg

    with psycopg.connect(str(service.db_path), autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET default_transaction_read_only = on')
    store._pool.drain()
