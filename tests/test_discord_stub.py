"""End-to-end checks of the Discord stub through discord.py's own, unmodified client code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.discord_stub import DiscordStub
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

GUILD_ID = 290_000_000_000 << 22  # shard 0 of 2
OTHER_GUILD_ID = 290_000_000_001 << 22  # shard 1 of 2
CHANNEL_ID = 1_300_000_000_000_000_001
OTHER_CHANNEL_ID = 1_300_000_000_000_000_002
READER_ID = 1_400_000_000_000_000_001

StartBot = Callable[[commands.Bot], Awaitable[commands.Bot]]


class HelpfulView(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="Helpful", custom_id="helpful")
    async def helpful(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message("Thanks for the feedback!", ephemeral=True)


def add_commands_and_listeners(bot: commands.Bot) -> commands.Bot:
    @bot.tree.command(name="ask", description="Ask the archive a question")
    @app_commands.describe(question="What you want to know", limit="How many sources")
    async def ask(interaction: discord.Interaction, question: str, limit: int = 3) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"Answer to {question} (top {limit})", view=HelpfulView())

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        if bot.user in message.mentions:
            await message.reply(f"You asked: {message.clean_content}")

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook
    return bot


def make_bot(bot_class: type[commands.Bot] = commands.Bot, **options: object) -> commands.Bot:
    intents = discord.Intents.default()
    intents.message_content = True
    bot = bot_class(command_prefix="!", intents=intents, guild_ready_timeout=0.05, **options)
    return add_commands_and_listeners(bot)


@pytest.fixture
def world(discord_stub: DiscordStub) -> DiscordStub:  # noqa: F811
    discord_stub.add_guild(GUILD_ID, name="Newsroom")
    discord_stub.add_channel(GUILD_ID, CHANNEL_ID, name="questions")
    discord_stub.add_member(GUILD_ID, READER_ID, name="reader")
    return discord_stub


@pytest.fixture
async def start_bot(world: DiscordStub) -> AsyncIterator[StartBot]:
    running: list[tuple[commands.Bot, asyncio.Task[None]]] = []

    async def start(bot: commands.Bot) -> commands.Bot:
        task = asyncio.create_task(bot.start(world.token))
        running.append((bot, task))
        await world.wait_for(lambda: bot.is_ready() or task.done())
        if task.done():
            task.result()
        return bot

    yield start
    for bot, task in running:
        await bot.close()
        await asyncio.wait_for(task, timeout=5)
    assert world.unknown_requests == []


async def test_slash_command_is_registered_deferred_and_followed_up(
    world: DiscordStub, start_bot: StartBot
) -> None:
    await start_bot(make_bot())

    (ask,) = world.registered_commands()
    assert ask["name"] == "ask"
    options = {o["name"]: (o["type"], o.get("required", False)) for o in ask["options"]}
    assert options == {"question": (3, True), "limit": (4, False)}

    record = await world.invoke_command(
        "ask", {"question": "budget", "limit": 2}, user_id=READER_ID, channel_id=CHANNEL_ID
    )
    await record.wait_done()

    assert record.callback_types == [5]
    assert record.original is not None
    assert record.original["content"] == "Answer to budget (top 2)"
    assert record.followups == [record.original]
    (message,) = world.messages(CHANNEL_ID)
    assert message["components"][0]["components"][0]["custom_id"] == "helpful"


async def test_mention_is_answered_with_a_reply_and_own_messages_are_ignored(
    world: DiscordStub, start_bot: StartBot
) -> None:
    await start_bot(make_bot())

    question = await world.send_message(CHANNEL_ID, READER_ID, "who won the election?", mentions_bot=True)
    (reply,) = await world.wait_for(lambda: world.messages(CHANNEL_ID))

    assert reply["type"] == 19
    assert reply["message_reference"]["message_id"] == question["id"]
    assert "who won the election?" in reply["content"]
    await asyncio.sleep(0.2)  # the echoed MESSAGE_CREATE of the reply must not trigger another answer
    assert len(world.messages(CHANNEL_ID)) == 1


async def test_button_click_is_acknowledged(world: DiscordStub, start_bot: StartBot) -> None:
    await start_bot(make_bot())
    answer = await world.invoke_command(
        "ask", {"question": "rates"}, user_id=READER_ID, channel_id=CHANNEL_ID
    )
    await answer.wait_done()

    click = await world.click_button(answer.original, "helpful", user_id=READER_ID)
    await click.wait_done()

    assert click.callback_types == [4]
    assert click.original["content"] == "Thanks for the feedback!"
    assert click.original["flags"] & 64  # ephemeral


async def test_rate_limited_send_is_retried_once_after_retry_after(
    world: DiscordStub, start_bot: StartBot
) -> None:
    await start_bot(make_bot())
    world.rate_limit("POST", r"^/channels/\d+/messages$", times=1, retry_after=0.5)

    await world.send_message(CHANNEL_ID, READER_ID, "any news?", mentions_bot=True)
    await world.wait_for(lambda: world.messages(CHANNEL_ID))

    limited, sent = world.requests_to("POST", r"^/channels/\d+/messages$")
    assert (limited.status, sent.status) == (429, 200)
    assert sent.at - limited.at >= 0.45
    await asyncio.sleep(0.1)
    assert len(world.messages(CHANNEL_ID)) == 1


async def test_gateway_drop_is_resumed_and_missed_events_replayed(
    world: DiscordStub, start_bot: StartBot
) -> None:
    world.gateway.heartbeat_interval_ms = 150
    await start_bot(make_bot())
    await world.wait_for(lambda: len(world.heartbeats.get(0, [])) >= 2)

    await world.drop_gateway()
    assert len(world.gateway.resumes) == 1
    assert len(world.gateway.identifies) == 1

    await world.drop_gateway(wait=False)
    await world.send_message(CHANNEL_ID, READER_ID, "still there?", mentions_bot=True)
    await world.wait_for(lambda: world.messages(CHANNEL_ID))
    assert world.gateway.resumes[-1]["replayed"] >= 1
    assert len(world.gateway.identifies) == 1

    started = time.monotonic()
    await world.send_message(CHANNEL_ID, READER_ID, "and now?", mentions_bot=True)
    await world.wait_for(lambda: len(world.messages(CHANNEL_ID)) == 2)
    assert time.monotonic() - started < 2


async def test_auto_sharded_bot_receives_only_its_shards_guild(
    world: DiscordStub, start_bot: StartBot
) -> None:
    world.shard_count = 2
    world.add_guild(OTHER_GUILD_ID, name="Other desk")
    world.add_channel(OTHER_GUILD_ID, OTHER_CHANNEL_ID)
    assert (world.shard_of(GUILD_ID), world.shard_of(OTHER_GUILD_ID)) == (0, 1)

    bot = await start_bot(make_bot(commands.AutoShardedBot, shard_count=2, shard_ids=[1]))

    assert [g.id for g in bot.guilds] == [OTHER_GUILD_ID]
    (identify,) = world.gateway.identifies
    assert (identify["shard_id"], identify["shard_count"]) == (1, 2)
    await world.send_message(OTHER_CHANNEL_ID, READER_ID, "hello shard one", mentions_bot=True)
    await world.wait_for(lambda: world.messages(OTHER_CHANNEL_ID))
