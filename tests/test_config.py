"""Settings are read once, validated, and every bad value names its variable."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings, parse_span

TOKEN = "MTIz.fake-token-for-tests.abcdefghijklmnop"


def test_defaults():
    s = load_settings({}, env_file=None)
    assert str(s.db) == "data/newsdesk.db" and str(s.corpus_dir) == "data/articles"
    assert s.qa_channels == frozenset() and s.results == 3 and s.cooldown == 10


def test_lists_of_ids_and_empty_values():
    s = load_settings(
        {"NEWSDESK_QA_CHANNELS": " 111, 222 ,", "NEWSDESK_ADMIN_USERS": "", "NEWSDESK_ADMIN_ROLES": "333"},
        env_file=None,
    )
    assert s.qa_channels == {111, 222} and s.admin_users == frozenset() and s.admin_roles == {333}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("NEWSDESK_QA_CHANNELS", "general", "NEWSDESK_QA_CHANNELS must be comma-separated numeric ids"),
        ("NEWSDESK_RESULTS", "0", "NEWSDESK_RESULTS must be from 1 to 10"),
        ("NEWSDESK_COOLDOWN", "soon", "NEWSDESK_COOLDOWN must be a whole number"),
        ("NEWSDESK_LINK_TEMPLATE", "https://x.org/{slug}", "unknown field {slug}"),
        ("NEWSDESK_LINK_TEMPLATE", "ftp://x.org/{id}", "http:// or https://"),
        ("NEWSDESK_PUBLIC_URL", "newsdesk.example.org", "NEWSDESK_PUBLIC_URL"),
        ("NEWSDESK_RELOAD_EVERY", "hourly", "NEWSDESK_RELOAD_EVERY"),
        ("NEWSDESK_SHARD_IDS", "0", "needs NEWSDESK_SHARD_COUNT"),
        ("NEWSDESK_LANGUAGE", "klingon", "NEWSDESK_LANGUAGE"),
        ("NEWSDESK_LOG_LEVEL", "LOUD", "NEWSDESK_LOG_LEVEL"),
        ("NEWSDESK_MESSAGE_CONTENT", "yes", "must be on, off or auto"),
    ],
)
def test_malformed_values_name_the_variable(name, value, message):
    with pytest.raises(ConfigError, match="^" + name) as info:
        load_settings({name: value}, env_file=None)
    assert message in str(info.value)


# Worker and search process counts: empty is the default (None: chosen from the cores), 0 is none.
PROCESS_COUNTS = [
    ("NEWSDESK_INGEST_WORKERS", "ingest_workers", 64),
    ("NEWSDESK_SEARCH_PROCESSES", "search_processes", 8),
]


@pytest.mark.parametrize(("name", "field", "most"), PROCESS_COUNTS)
def test_process_counts(name, field, most):
    for value, expected in [("", None), ("0", 0), (" 2 ", 2), (str(most), most)]:
        assert getattr(load_settings({name: value}, env_file=None), field) == expected


@pytest.mark.parametrize(("name", "field", "most"), PROCESS_COUNTS)
@pytest.mark.parametrize("value", ["-1", "two", "1.5", "too many"])
def test_a_bad_process_count_names_the_variable(name, field, most, value):
    with pytest.raises(ConfigError, match="^" + name):
        load_settings({name: str(most + 1) if value == "too many" else value}, env_file=None)


@pytest.mark.parametrize(("raw", "value"), [("", "auto"), ("ON", "on"), (" off ", "off"), ("auto", "auto")])
def test_message_content(raw, value):
    assert load_settings({"NEWSDESK_MESSAGE_CONTENT": raw}, env_file=None).message_content == value


def test_token_required_to_run_the_bot():
    with pytest.raises(ConfigError, match="DISCORD_TOKEN is not set"):
        load_settings({}, require_token=True, env_file=None)
    assert load_settings({"DISCORD_TOKEN": TOKEN}, require_token=True, env_file=None).token == TOKEN


def test_token_never_in_repr():
    assert TOKEN not in repr(load_settings({"DISCORD_TOKEN": TOKEN}, env_file=None))


def test_shards():
    s = load_settings({"NEWSDESK_SHARD_COUNT": "2", "NEWSDESK_SHARD_IDS": "1"}, env_file=None)
    assert (s.shard_count, s.shard_ids) == (2, (1,))
    with pytest.raises(ConfigError, match="from 0 to 1"):
        load_settings({"NEWSDESK_SHARD_COUNT": "2", "NEWSDESK_SHARD_IDS": "2"}, env_file=None)


def test_env_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("NEWSDESK_RESULTS=5\nNEWSDESK_COOLDOWN=7\n")
    monkeypatch.setenv("NEWSDESK_COOLDOWN", "3")
    s = load_settings(env_file=env_file)
    assert (s.results, s.cooldown) == (5, 3)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800), ("1w", 604800)]
)
def test_spans(text, seconds):
    assert parse_span(text) == seconds
