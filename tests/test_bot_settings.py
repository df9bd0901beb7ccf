"""``/settings``, end to end: a server's admins change the bot in Discord and it is in force at once."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from retrieval.server_settings import ServerSettings, ServerSettingsTable
from tests.bot_harness import (
    EDITORS_ROLE,
    EPHEMERAL,
    GENERAL,
    GUILD,
    LISTED_ADMIN,
    MANAGER,
    QA,
    READER,
    ROLE_ADMIN,
    build_world,
    button_ids,
    callback_text,
    embed_text,
    refuse_writes,
    running_bot,
    shown,
)
from tests.data import REPO
from tests.discord_stub import InteractionRejected
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

NEWS = 1_300_000_000_000_000_003  # a second text channel
CLOSED = 1_300_000_000_000_000_004  # a channel where the bot may not send
VOICE = 1_300_000_000_000_000_005
MODERATORS_ROLE = 1_500_000_000_000_000_003
MODERATOR = 1_400_000_000_000_000_007
SEND_MESSAGES = 1 << 11
INTEGER, CHANNEL = 4, 7


@pytest.fixture
async def world(discord_stub):  # noqa: F811
    build_world(discord_stub)
    discord_stub.add_channel(GUILD, NEWS, name="news")
    discord_stub.add_channel(GUILD, CLOSED, name="announcements")
    discord_stub.add_channel(GUILD, VOICE, name="voice", type=2)
    discord_stub.set_overwrite(CLOSED, discord_stub.bot_user_id, deny=SEND_MESSAGES)
    discord_stub.add_role(GUILD, MODERATORS_ROLE, name="Moderators", permissions=0)
    discord_stub.add_member(GUILD, MODERATOR, name="moderator", roles=(MODERATORS_ROLE,))
    return discord_stub


@pytest.fixture
async def bot(world, service):
    """No Q&A channel in the environment: the servers set their own."""
    async with running_bot(world, service, qa_channels=frozenset(), message_content="on") as running:
        yield running


async def settings(stub, subcommand, options=None, *, user=MANAGER, enforce=True):
    record = await stub.invoke_command(
        "settings",
        options or {},
        subcommand=subcommand,
        user_id=user,
        channel_id=GENERAL,
        enforce_permissions=enforce,
    )
    await record.wait_done(timeout=15)
    return record


def said(record) -> str:
    return shown(callback_text(record))


def private(record) -> bool:
    return bool(record.callbacks[0]["data"].get("flags", 0) & EPHEMERAL)


async def ask(stub, user=READER):
    record = await stub.invoke_command(
        "ask", {"question": "how much did the library repairs cost?"}, user_id=user, channel_id=GENERAL
    )
    await record.wait_done(timeout=15)
    return record


def results_shown(record) -> int:
    return len(re.findall(r"^\*\*\d+\. ", embed_text(record.original), re.M))


def replies_to(stub, channel_id, message) -> list[dict]:
    return [
        m
        for m in stub.messages(channel_id)
        if (m.get("message_reference") or {}).get("message_id") == message["id"]
    ]


async def not_answered(stub, channel_id, message) -> bool:
    """True when the bot leaves ``message`` alone: a later mention is answered and this one is not."""
    probe = await stub.send_message(GENERAL, READER, "library repairs cost", mentions_bot=True)
    await stub.wait_for(lambda: replies_to(stub, GENERAL, probe), timeout=10)
    await asyncio.sleep(0.3)
    return not replies_to(stub, channel_id, message)


def stored(service):
    return ServerSettingsTable(service.store).get(GUILD)


# -- the commands as Discord shows them -----------------------------------------------------------


async def test_settings_are_hidden_from_members_and_use_discord_option_types(world, bot):
    command = next(c for c in world.registered_commands() if c["name"] == "settings")
    assert command["default_member_permissions"] == str(0x20)
    assert command.get("contexts") == [0] or command.get("dm_permission") is False
    options = {o["name"]: o for o in command["options"]}
    assert set(options) == {"show", "qa-channel", "admin-role", "results", "cooldown", "reset"}
    qa = {o["name"]: o for o in options["qa-channel"]["options"]}
    channel = qa["add"]["options"][0]
    assert (channel["name"], channel["type"], channel["required"]) == ("channel", CHANNEL, True)
    assert set(channel["channel_types"]) == {0, 5}  # text and announcement channels
    role = {o["name"]: o for o in options["admin-role"]["options"]}["add"]["options"][0]
    assert (role["name"], role["type"]) == ("role", 8)
    count = options["results"]["options"][0]
    assert (count["type"], count["min_value"], count["max_value"]) == (INTEGER, 1, 10)
    seconds = options["cooldown"]["options"][0]
    assert (seconds["type"], seconds["min_value"], seconds["max_value"]) == (INTEGER, 0, 3600)


async def test_every_settings_subcommand_is_in_the_readme(world, bot):
    command = next(c for c in world.registered_commands() if c["name"] == "settings")
    readme = (REPO / "README.md").read_text()

    def names(option, prefix):
        if option.get("type") in (1, None):
            yield prefix
        for child in option.get("options") or []:
            if child["type"] in (1, 2):
                yield from names(child, f"{prefix} {child['name']}")

    found = [name for name in names(command, "/settings") if name != "/settings"]
    assert len(found) == 8
    for name in found:
        assert f"`{name}" in readme, f"{name} is not documented in the README"


# -- Q&A channels ---------------------------------------------------------------------------------


async def test_an_added_qa_channel_is_answered_at_once_and_a_removed_one_no_longer(world, bot, service):
    before = await world.send_message(NEWS, READER, "how much did the library repairs cost?")
    assert await not_answered(world, NEWS, before)

    added = await settings(world, "qa-channel add", {"channel": NEWS})
    assert private(added) and f"<#{NEWS}> is now a Q&A channel" in said(added)
    question = await world.send_message(NEWS, READER, "how much did the library repairs cost?")
    reply = (await world.wait_for(lambda: replies_to(world, NEWS, question), timeout=10))[0]
    assert "3.2 million pounds" in shown(embed_text(reply))
    assert stored(service).qa_channels == {NEWS}

    removed = await settings(world, "qa-channel remove", {"channel": NEWS})
    assert private(removed) and "no longer a Q&A channel" in said(removed)
    after = await world.send_message(NEWS, READER, "how much did the library repairs cost?")
    assert await not_answered(world, NEWS, after)


async def test_a_channel_the_bot_cannot_send_in_is_refused_with_what_is_missing(world, bot, service):
    record = await settings(world, "qa-channel add", {"channel": CLOSED})
    assert private(record)
    assert "I can't answer in" in said(record) and "Send Messages" in said(record)
    assert stored(service) is None


async def test_a_voice_channel_cannot_be_picked_and_the_bot_refuses_one_sent_anyway(world, bot, service):
    with pytest.raises(InteractionRejected):
        await settings(world, "qa-channel add", {"channel": VOICE})
    raw = [{"name": "channel", "type": CHANNEL, "value": str(VOICE)}]
    record = await settings(world, "qa-channel add", raw)
    assert private(record) and "can't be used for this option" in said(record)
    assert stored(service) is None


async def test_without_the_message_content_intent_adding_a_qa_channel_says_how_to_turn_it_on(world, service):
    async with running_bot(world, service, qa_channels=frozenset(), message_content="off"):
        record = await settings(world, "qa-channel add", {"channel": NEWS})
    text = said(record)
    assert f"<#{NEWS}> is now a Q&A channel" in text
    assert "Message Content Intent" in text and "NEWSDESK_MESSAGE_CONTENT" in text
    assert stored(service).qa_channels == {NEWS}  # kept: it works once the intent is on


async def test_the_environments_qa_channels_are_the_default_a_server_can_change(world, service):
    async with running_bot(world, service, message_content="on"):  # NEWSDESK_QA_CHANNELS = {QA}
        await settings(world, "qa-channel add", {"channel": NEWS})
        assert stored(service).qa_channels == {QA, NEWS}  # added to what was in force
        await settings(world, "qa-channel remove", {"channel": QA})
        message = await world.send_message(QA, READER, "how much did the library repairs cost?")
        assert await not_answered(world, QA, message)
        shown_settings = said(await settings(world, "show"))
    assert f"<#{NEWS}>" in shown_settings and f"<#{QA}>" not in shown_settings


# -- who may change settings ----------------------------------------------------------------------


async def test_a_member_without_permission_is_refused_privately_even_when_the_command_is_shown(
    world, bot, service, caplog
):
    caplog.set_level(logging.WARNING)
    for subcommand, options in [
        ("qa-channel add", {"channel": NEWS}),
        ("results", {"count": 1}),
        ("show", {}),
    ]:
        record = await settings(world, subcommand, options, user=READER, enforce=False)
        assert private(record)
        assert f"Only admins can use /settings {subcommand}" in said(record)
    assert stored(service) is None
    assert any("refused /settings qa-channel add" in r.getMessage() for r in caplog.records)


async def test_the_client_hides_settings_from_members(world, bot):
    with pytest.raises(InteractionRejected):
        await settings(world, "show", user=READER, enforce=True)


@pytest.mark.parametrize("user", [MANAGER, LISTED_ADMIN, ROLE_ADMIN], ids=["manage-server", "user", "role"])
async def test_admins_change_settings(world, bot, service, user):
    record = await settings(world, "results", {"count": 4}, user=user, enforce=user == MANAGER)
    assert private(record) and "now show 4 answers" in said(record)
    assert stored(service).results == 4 and stored(service).changed_by == user


async def test_a_servers_admin_role_lets_its_members_run_admin_commands(world, bot):
    refused = await settings(world, "show", user=MODERATOR, enforce=False)
    assert "Only admins" in said(refused)
    added = await settings(world, "admin-role add", {"role": MODERATORS_ROLE})
    assert f"<@&{MODERATORS_ROLE}>" in said(added)
    assert "newsdesk settings for Newsroom" in said(
        await settings(world, "show", user=MODERATOR, enforce=False)
    )
    feedback = await world.invoke_command(
        "feedback", {}, user_id=MODERATOR, channel_id=GENERAL, enforce_permissions=False
    )
    await feedback.wait_done(timeout=10)
    assert "Only admins" not in said(feedback)
    # The environment's admin role stays: the server's list started from it.
    assert "newsdesk settings" in said(await settings(world, "show", user=ROLE_ADMIN, enforce=False))

    await settings(world, "admin-role remove", {"role": MODERATORS_ROLE})
    assert "Only admins" in said(await settings(world, "show", user=MODERATOR, enforce=False))


async def test_an_admin_role_alone_cannot_change_who_is_an_admin(world, bot, service):
    record = await settings(
        world, "admin-role add", {"role": MODERATORS_ROLE}, user=ROLE_ADMIN, enforce=False
    )
    assert private(record) and "Only members with the Manage Server permission" in said(record)
    assert stored(service) is None


async def test_everyone_cannot_be_an_admin_role(world, bot, service):
    record = await settings(world, "admin-role add", {"role": GUILD})
    assert "@everyone can't be an admin role" in said(record)
    assert stored(service) is None


# -- results and cooldown -------------------------------------------------------------------------


async def test_results_take_effect_on_the_next_question(world, bot):
    assert results_shown(await ask(world)) == 2  # NEWSDESK_RESULTS in the harness
    await settings(world, "results", {"count": 1})
    assert results_shown(await ask(world)) == 1
    await settings(world, "results")  # no count: back to the default
    assert results_shown(await ask(world)) == 2


async def test_cooldown_takes_effect_on_the_next_question(world, bot):
    assert results_shown(await ask(world)) and results_shown(await ask(world))  # NEWSDESK_COOLDOWN=0
    record = await settings(world, "cooldown", {"seconds": 600})
    assert "once every 600 s" in said(record)
    assert results_shown(await ask(world))
    second = await ask(world)
    assert "You're asking quickly" in said(second) and private(second)
    await settings(world, "cooldown", {"seconds": 0})
    assert results_shown(await ask(world))


async def test_out_of_range_numbers_are_refused_by_the_client_and_by_the_bot(world, bot, service):
    with pytest.raises(InteractionRejected):
        await settings(world, "results", {"count": 11})
    raw = await settings(world, "results", [{"name": "count", "type": INTEGER, "value": 11}])
    assert private(raw) and "must be from 1 to 10; got 11" in said(raw)
    raw = await settings(world, "cooldown", [{"name": "seconds", "type": INTEGER, "value": -5}])
    assert "must be from 0 to 3600; got -5" in said(raw)
    assert stored(service) is None


# -- show and reset -------------------------------------------------------------------------------


async def test_show_marks_each_setting_as_set_here_or_a_default(world, bot):
    await settings(world, "cooldown", {"seconds": 30})
    text = said(await settings(world, "show"))
    assert f"Cooldown between questions\n30 s\n*set here by <@{MANAGER}> on 20" in text
    assert "Answers per reply\n2\n*default (`NEWSDESK_RESULTS`)*" in text
    assert "Q&A channels\nnone\n*default (`NEWSDESK_QA_CHANNELS`)*" in text
    assert f"Admin roles\n<@&{EDITORS_ROLE}>\n*default (`NEWSDESK_ADMIN_ROLES`)*" in text


async def test_reset_asks_first_and_then_goes_back_to_the_defaults(world, bot, service):
    await settings(world, "results", {"count": 1})
    await settings(world, "qa-channel add", {"channel": NEWS})
    record = await settings(world, "reset")
    assert private(record) and "Reset this server's own settings" in said(record)
    message = record.original
    buttons = button_ids(message)

    cancel = await world.click_button(message, buttons["Cancel"], user_id=MANAGER)
    await cancel.wait_done()
    assert stored(service).results == 1

    record = await settings(world, "reset")
    confirm = await world.click_button(
        record.original, button_ids(record.original)["Reset to the defaults"], user_id=MANAGER
    )
    await confirm.wait_done()
    assert "uses the default settings again" in said(confirm)
    assert stored(service) is None
    assert results_shown(await ask(world)) == 2
    changes = ServerSettingsTable(service.store).changes(GUILD)
    assert {(c.setting, c.new_value, c.user_id) for c in changes[:2]} == {
        ("results", None, MANAGER),
        ("qa_channels", None, MANAGER),
    }


async def test_help_and_about_show_the_settings_in_force_here(world, bot):
    await settings(world, "qa-channel add", {"channel": NEWS})
    await settings(world, "cooldown", {"seconds": 45})
    for name in ("help", "about"):
        record = await world.invoke_command(name, {}, user_id=READER, channel_id=GENERAL)
        await record.wait_done(timeout=10)
        text = said(record)
        assert f"Q&A channels: <#{NEWS}>: every message there is a question" in text
        assert "Answers show 2 passages at a time" in text
        assert "once every 45 s" in text
        assert "This server has its own settings" in text


async def test_help_without_server_settings_shows_the_defaults(world, bot):
    record = await world.invoke_command("help", {}, user_id=READER, channel_id=GENERAL)
    await record.wait_done(timeout=10)
    text = said(record)
    assert "No Q&A channel here" in text and "No wait between questions" in text
    assert "its own settings" not in text


# -- the database ---------------------------------------------------------------------------------


async def test_a_change_by_another_process_is_in_force_within_the_watch_interval(world, bot, service):
    other = ServerSettingsTable(type(service.store)(service.db_path))  # another process's connection
    other.update(GUILD, lambda row: ServerSettings(GUILD, results=1), user_id=LISTED_ADMIN)
    await world.wait_for(lambda: bot.server_settings.effective(GUILD).results == 1, timeout=5)
    assert results_shown(await ask(world)) == 1
    other.store.close()


async def test_settings_survive_a_reload_that_rebuilds_the_corpus(world, bot, service):
    await settings(world, "results", {"count": 1})
    await asyncio.to_thread(service.reload, rebuild=True)
    assert stored(service).results == 1
    assert results_shown(await ask(world)) == 1


# -- servers the bot leaves -----------------------------------------------------------------------


async def test_a_server_that_removes_the_bot_keeps_its_settings_30_days_then_they_are_dropped(
    world, bot, service
):
    await settings(world, "results", {"count": 1})
    await world.remove_guild(GUILD, outage=True)  # an outage is not a removal
    await asyncio.sleep(0.3)
    assert stored(service).left_at is None

    await world.remove_guild(GUILD)
    await world.wait_for(lambda: stored(service).left_at is not None, timeout=5)
    table = ServerSettingsTable(service.store)
    assert table.drop_expired(now=datetime.now(UTC) + timedelta(days=29)) == []
    assert table.drop_expired(now=datetime.now(UTC) + timedelta(days=31)) == [GUILD]
    assert stored(service) is None


async def test_a_server_that_invites_the_bot_back_finds_its_settings(world, bot, service):
    await settings(world, "results", {"count": 1})
    await world.remove_guild(GUILD)
    await world.wait_for(lambda: stored(service).left_at is not None, timeout=5)

    build_world(world)  # invited back: the same server, channels and members
    await world.join_guild(GUILD)
    await world.wait_for(lambda: stored(service).left_at is None, timeout=5)
    table = ServerSettingsTable(service.store)
    assert table.drop_expired(now=datetime.now(UTC) + timedelta(days=31)) == []
    assert results_shown(await ask(world)) == 1


async def test_a_read_only_database_refuses_the_change_privately_and_keeps_the_old_settings(
    world, bot, service
):
    await settings(world, "results", {"count": 1})
    refuse_writes(service)
    record = await settings(world, "results", {"count": 5})
    assert private(record) and "That didn't work" in said(record) and "read-only" in said(record)
    assert results_shown(await ask(world)) == 1


async def test_a_server_that_removed_the_bot_while_it_was_off_is_noticed_at_start(world, service):
    gone = GUILD + (1 << 22)  # not in the bot's list of servers any more
    table = ServerSettingsTable(service.store)
    table.update(gone, lambda row: ServerSettings(gone, results=1), user_id=MANAGER)
    table.update(GUILD, lambda row: ServerSettings(GUILD, results=4), user_id=MANAGER)
    async with running_bot(world, service):
        await world.wait_for(lambda: table.get(gone).left_at is not None, timeout=5)
        assert table.get(GUILD).left_at is None


async def test_an_admin_role_alone_can_reset_unless_that_would_drop_admin_roles(world, bot, service):
    await settings(world, "results", {"count": 1})
    record = await settings(world, "reset", user=ROLE_ADMIN, enforce=False)
    assert "Reset to the defaults" in button_ids(record.original)

    await settings(world, "admin-role add", {"role": MODERATORS_ROLE})
    record = await settings(world, "reset", user=ROLE_ADMIN, enforce=False)
    assert private(record) and "Only members with the Manage Server permission" in said(record)
    assert stored(service).admin_roles == {EDITORS_ROLE, MODERATORS_ROLE}


async def test_a_deleted_channel_or_role_leaves_the_servers_lists(world, bot, service):
    await settings(world, "qa-channel add", {"channel": NEWS})
    await settings(world, "admin-role add", {"role": MODERATORS_ROLE})
    await world.delete_channel(NEWS)
    await world.delete_role(GUILD, MODERATORS_ROLE)
    await world.wait_for(
        lambda: not stored(service).qa_channels and MODERATORS_ROLE not in stored(service).admin_roles
    )
    assert stored(service).admin_roles == {EDITORS_ROLE}
    # Both removals are logged, by no member (the two events may be written in either order).
    latest = ServerSettingsTable(service.store).changes(GUILD)[:2]
    assert {(c.setting, c.user_id) for c in latest} == {("qa_channels", None), ("admin_roles", None)}


async def test_paging_steps_by_the_servers_answers_per_reply(world, bot):
    await settings(world, "results", {"count": 1})
    record = await ask(world)
    more = button_ids(record.original)["More"]
    click = await world.click_button(record.original, more, user_id=READER)
    await click.wait_done()
    page = embed_text(world.message(int(record.original["id"])))
    assert re.findall(r"^\*\*(\d+)\. ", page, re.M) == ["2"]  # one answer per page: the second
