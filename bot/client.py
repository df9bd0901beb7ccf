"""The Discord client: settings and the corpus service in, cogs loaded, commands synced."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from retrieval import (
    Answer,
    EmptyArchive,
    NewsdeskError,
    NewsService,
    QuestionError,
    ReloadInProgress,
    SearchProcesses,
)

from .config import Settings
from .memory import freeze_start_up_objects
from .server_settings import ServerSettingsCache, message_content_wanted
from .tasks import spawn
from .wiring import watch_corpus_version

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger(__name__)

T = TypeVar("T")

LAG_WINDOW = 5.0  # seconds of event-loop lag history that /healthz reports on

COGS = (
    "bot.cogs.ask",
    "bot.cogs.headlines",
    "bot.cogs.admin",
    "bot.cogs.info",
    "bot.cogs.settings",
    "bot.cogs.server_upkeep",
)


class NotAdmin(app_commands.CheckFailure):
    """The member may not run admin commands."""


class NewsTree(app_commands.CommandTree):
    """One place where every slash-command error becomes a short private message (and a log line)."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        command = interaction.command.qualified_name if interaction.command else "?"
        if isinstance(error, NotAdmin):
            log.warning(
                "refused /%s for user %s in guild %s: not an admin",
                command,
                interaction.user.id,
                interaction.guild_id,
            )
            text = str(error)
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works in a server, not in direct messages."
        elif isinstance(error, app_commands.CommandOnCooldown):
            text = f"Slow down a little: try again in {error.retry_after:.0f} s."
        elif isinstance(error, app_commands.TransformerError):
            # Discord's client offers only fitting values; another client, or a channel or role deleted
            # a moment ago, can still send one the command cannot use.
            text = f"That {error.type.name} can't be used for this option: pick another one."
        elif isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You can't use this command here."
        elif isinstance(original, (QuestionError, ReloadInProgress, EmptyArchive)):
            text = sentence(str(original))
        elif isinstance(original, NewsdeskError):
            log.warning("/%s failed: %s", command, original)
            text = f"That didn't work: {original}."
        else:
            log.error("/%s failed", command, exc_info=original)
            text = "Something went wrong on my side; it has been logged. Please try again later."
        await send_private(interaction, text)


def sentence(text: str) -> str:
    """'the question is empty' -> 'The question is empty.'"""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


async def send_private(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral message, whether or not the interaction was answered already."""
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text[:2000], ephemeral=True)
        else:
            await interaction.response.send_message(text[:2000], ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell user %s about an error", interaction.user.id)


# Seconds of work before an interaction is acknowledged ("thinking"). Work done by then (an answer, headlines,
# a vote, a settings change) goes out in the first response: one request and one gateway event fewer. Discord
# drops an interaction not acknowledged within 3 s, and the reply itself still has to travel.
ACK_DEADLINE = 1.5


async def within_deadline(
    interaction: discord.Interaction,
    work: Awaitable[T],
    *,
    component: bool = False,
    ephemeral: bool = True,
) -> T:
    """Await ``work`` (a search, a database write); when it takes over ``ACK_DEADLINE`` (a slow question, a
    database that is slow or gone), acknowledge the interaction first with "thinking" (seen by the member alone
    when ``ephemeral``), so that the outcome, whatever it is, still reaches the member.
    ``component``: the interaction is a button press whose message the reply edits."""
    loop = asyncio.get_running_loop()
    acknowledging: list[asyncio.Task[Any]] = []

    def acknowledge() -> None:
        if not interaction.response.is_done():
            response = interaction.response
            ack = response.defer() if component else response.defer(ephemeral=ephemeral, thinking=True)
            acknowledging.append(loop.create_task(ack))

    # A timer beside the work, not a task for it: most work ends well within the deadline.
    timer = loop.call_later(ACK_DEADLINE, acknowledge)
    try:
        return await work
    finally:
        timer.cancel()
        if acknowledging:  # the outcome goes out once the member saw "thinking"
            await acknowledging[0]


async def respond(interaction: discord.Interaction, *, ephemeral: bool = False, **fields: Any) -> int | None:
    """Send the reply as the interaction's first response, or into its "thinking" message when it was
    acknowledged first (``within_deadline``); mentions never ping. Returns the reply's message id, if known."""
    fields["allowed_mentions"] = discord.AllowedMentions.none()
    if interaction.response.is_done():
        return (await interaction.edit_original_response(**fields)).id
    sent = await interaction.response.send_message(ephemeral=ephemeral, **fields)
    return sent.message_id


def skip_own_command_replies(state: Any) -> None:
    """Drop, unread, the gateway's copy of the bot's own replies to slash commands and buttons.

    Each reply comes back as a MESSAGE_CREATE event, and discord.py would build a ``Message`` of it (40-55 µs),
    cache it and start ``on_message`` for it, only for that to ignore it.
    The reply's id is already known from the response, and a member's reply to it carries it whole. Every other
    message (members', and the bot's replies to mentions) is parsed as before. ``state`` is discord.py's
    connection state; a discord.py without its parser table is left as it is."""
    parsers = getattr(state, "parsers", None)
    if not isinstance(parsers, dict) or "MESSAGE_CREATE" not in parsers:
        return
    parse = parsers["MESSAGE_CREATE"]

    def parse_message_create(data: dict[str, Any]) -> None:
        me = state.self_id
        if (
            data.get("interaction_metadata")
            and me is not None
            and (data.get("author") or {}).get("id") == str(me)
        ):
            return
        parse(data)

    parsers["MESSAGE_CREATE"] = parse_message_create


class AnswerMemory:
    """Which question each of our answer messages (and threads) answered, for follow-up questions."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._questions: OrderedDict[int, str] = OrderedDict()

    def remember(self, key: int, question: str) -> None:
        self._questions[key] = question
        self._questions.move_to_end(key)
        while len(self._questions) > self.size:
            self._questions.popitem(last=False)

    def question_for(self, key: int | None) -> str | None:
        return self._questions.get(key) if key is not None else None


class NewsBot(commands.Bot):
    """The newsdesk bot: discord.py's Bot with the settings, the corpus service and the search threads."""

    def __init__(self, settings: Settings, service: NewsService, **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings
        self.service = service
        self.server_settings = ServerSettingsCache(settings, service)  # each server's own over the defaults
        self.server_settings.load()
        # Questions run here, off the event loop. As many threads as cores: more would only queue on the
        # interpreter lock and stretch the event loop's turns (measured in bench/load_bot.py).
        self.search_pool = ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="newsdesk-search"
        )
        # Questions are answered by these processes, on the other cores, when they can; else in the threads.
        self.search_processes = SearchProcesses(service, settings.search_processes)
        self.answers = AnswerMemory()
        self.web_runner: web.AppRunner | None = None
        self.loop_lag_max = 0.0  # worst event-loop lag seen, in seconds
        self.loop_lag_recent: deque[tuple[float, float]] = deque(maxlen=64)

    async def setup_hook(self) -> None:  # called by discord.py once, before connecting
        skip_own_command_replies(self._connection)
        for cog in COGS:
            await self.load_extension(cog)
        freeze_start_up_objects()  # before connecting: the collection it starts with stalls no answer
        await asyncio.to_thread(lambda: self.service.snapshot)  # load the index before answering anything
        self.search_processes.start()  # they open the index loaded (or built) just now
        if self.settings.dev_guild:
            guild = discord.Object(self.settings.dev_guild)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d commands to the development guild %s", len(synced), self.settings.dev_guild)
        else:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))
        spawn(
            watch_corpus_version(
                self.service, self.settings.watch_every, running=lambda: not self.is_closed()
            ),
            name="corpus-version-watch",
        )
        spawn(self._watch_loop_lag(), name="loop-lag-watch")
        if self.settings.public_url:
            from .web import start_web

            try:
                self.web_runner = await start_web(
                    self.service,
                    self.settings.web_host,
                    self.settings.web_port,
                    results=self.settings.results,
                    status=self.health,
                )
            except OSError as exc:
                raise NewsdeskError(
                    f"cannot serve the article pages on {self.settings.web_host}:{self.settings.web_port} ({exc}); "
                    "free the port or set NEWSDESK_WEB_PORT"
                ) from exc

    async def _watch_loop_lag(self, interval: float = 0.25) -> None:
        """How late the event loop wakes a sleeper: the time other work held it (shown in /healthz)."""
        while not self.is_closed():
            started = time.perf_counter()
            await asyncio.sleep(interval)
            lag = time.perf_counter() - started - interval
            self.loop_lag_max = max(self.loop_lag_max, lag)
            self.loop_lag_recent.append((time.monotonic(), lag))

    def health(self) -> dict[str, Any]:
        """What /healthz adds when the article pages run inside the bot."""
        now = time.monotonic()
        recent = max((lag for at, lag in self.loop_lag_recent if now - at <= LAG_WINDOW), default=0.0)
        return {
            "discord_connected": not self.is_closed() and self.is_ready(),
            "event_loop_lag_ms": {
                "worst": round(self.loop_lag_max * 1000, 1),
                f"last_{LAG_WINDOW:.0f}s": round(recent * 1000, 1),
            },
            "search_processes": self.search_processes.status(),
        }

    async def run_search(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a retrieval call in the search threads and wait for it without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(
            self.search_pool, partial(func, *args, **kwargs)
        )

    async def answer(
        self, question: str, *, k: int, offset: int = 0, context: list[str] | None = None
    ) -> Answer:
        """``NewsService.search``: in a search process when one can answer, else in the search threads."""
        fields: dict[str, Any] = {"k": k, "offset": offset, "context": context or []}
        answer = await self.search_processes.search(question=question, **fields)
        if answer is None:
            answer = await self.run_search(self.service.search, question, **fields)
        return answer

    async def close(self) -> None:
        if self.web_runner is not None:
            await self.web_runner.cleanup()
        await super().close()
        await self.search_processes.close()
        self.search_pool.shutdown(wait=False, cancel_futures=True)


class ShardedNewsBot(NewsBot, commands.AutoShardedBot):
    """The newsdesk bot on discord.py's AutoShardedBot: this process runs some of the gateway shards."""


def build_bot(settings: Settings, service: NewsService, **overrides: Any) -> NewsBot:
    """A Bot, or an AutoShardedBot when NEWSDESK_SHARD_COUNT is set, with safe defaults."""
    # Only the events newsdesk acts on: servers, channels and roles (guilds) and messages. Discord's default set
    # would also send every reaction, typing start, voice state, invite, emoji and scheduled-event change in
    # every server, each one parsed by discord.py for nothing.
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    # Only needed to read Q&A channels (from the environment or a server's settings); mentions work without.
    intents.message_content = message_content_wanted(settings, service)
    if settings.qa_channels and not intents.message_content:
        log.warning(
            "NEWSDESK_MESSAGE_CONTENT=off: messages in Q&A channels are answered only when they mention me"
        )
    cls = ShardedNewsBot if settings.shard_count else NewsBot
    options: dict[str, Any] = {
        "command_prefix": commands.when_mentioned,
        "intents": intents,
        "allowed_mentions": discord.AllowedMentions.none(),
        "tree_cls": NewsTree,
        "help_command": None,
        "chunk_guilds_at_startup": False,
        "max_messages": 1000,
    }
    if settings.shard_count:
        options["shard_count"] = settings.shard_count
        if settings.shard_ids is not None:
            options["shard_ids"] = list(settings.shard_ids)

    options.update(overrides)
    return cls(settings, service, **options)
