"""Settings: read once from the environment and a ``.env`` file, validated into one typed object.

A malformed value raises ConfigError naming the variable; the entry points print that one line and
exit with status 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from retrieval import (
    DEFAULT_MAX_ARTICLE_BYTES,
    DEFAULT_MAX_FILE_BYTES,
    MAX_QUESTION_CHARS,
    Analyzer,
    LinkPolicy,
    LinkTemplateError,
    NewsdeskError,
    StoreError,
    is_database_url,
    parse_database_url,
)

DEFAULT_DB = "data/newsdesk.db"
DEFAULT_CORPUS_DIR = "data/articles"
DEFAULT_INDEX_CACHE = "data/index-cache"


class ConfigError(NewsdeskError, ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _ids(name: str, raw: str) -> frozenset[int]:
    values = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or len(part) > 20:
            raise ConfigError(f"{name} must be comma-separated numeric ids; {part!r} is not one")
        values.add(int(part))
    return frozenset(values)


def _int(name: str, raw: str, default: int, low: int, high: int) -> int:
    if not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}; got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be from {low} to {high}; got {value}")
    return value


_SPAN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.I)
_SPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_span(raw: str) -> int:
    """'90s', '30m', '1h', '2d', '1w' -> seconds. Raises ValueError."""
    match = _SPAN.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a span like 30m, 1h or 2d")
    return int(match.group(1)) * _SPAN_SECONDS[match.group(2).lower()]


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting with its default: the one place a default is written (``load_settings`` reads them here)."""

    token: str | None = field(default=None, repr=False)
    db: Path | str = Path(DEFAULT_DB)  # an SQLite file, or a postgresql:// URL (kept as text)
    index_cache: Path = Path(DEFAULT_INDEX_CACHE)
    corpus_dir: Path = Path(DEFAULT_CORPUS_DIR)
    qa_channels: frozenset[int] = frozenset()
    admin_users: frozenset[int] = frozenset()
    admin_roles: frozenset[int] = frozenset()
    dev_guild: int | None = None
    results: int = 3
    cooldown: int = 10
    max_question: int = MAX_QUESTION_CHARS
    language: str = "english"
    max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ingest_workers: int | None = None  # None: one less than the cores this process may use
    search_processes: int | None = None  # None: one when the bot may use two cores or more
    link_template: str | None = None
    public_url: str | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    reload_every: int | None = None
    watch_every: int = 5
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    log_level: str = "INFO"
    message_content: str = "auto"

    def link_policy(self) -> LinkPolicy:
        return LinkPolicy(self.link_template, self.public_url)


_DEFAULT = Settings()

# Every setting, with a one-line description; the README and .env.example list the same names
# (a test keeps them in step).
SETTINGS: dict[str, str] = {
    "DISCORD_TOKEN": "the bot token from the Discord developer portal (required to run the bot)",
    "NEWSDESK_DB": f"the database: an SQLite file, or a postgresql:// URL (default {_DEFAULT.db})",
    "NEWSDESK_INDEX_CACHE": (
        f"the folder for the local copy of a PostgreSQL database's search index (default {_DEFAULT.index_cache})"
    ),
    "NEWSDESK_CORPUS_DIR": f"the folder of article files (default {_DEFAULT.corpus_dir})",
    "NEWSDESK_QA_CHANNELS": "channel ids where every message is a question (comma-separated)",
    "NEWSDESK_MESSAGE_CONTENT": "ask Discord for the Message Content intent: on, off or auto (default auto: "
    "on when a Q&A channel is configured here or in any server's settings)",
    "NEWSDESK_ADMIN_USERS": "user ids allowed to run admin commands anywhere (comma-separated)",
    "NEWSDESK_ADMIN_ROLES": "role ids whose members may run admin commands (comma-separated)",
    "NEWSDESK_DEV_GUILD": "a guild id: sync slash commands to this guild only (instant, for development)",
    "NEWSDESK_RESULTS": f"answers per reply, 1-10 (default {_DEFAULT.results})",
    "NEWSDESK_COOLDOWN": f"seconds a member waits between questions (default {_DEFAULT.cooldown}; 0 turns it off)",
    "NEWSDESK_MAX_QUESTION": f"longest question accepted, in characters (default {_DEFAULT.max_question})",
    "NEWSDESK_LANGUAGE": f"the corpus language for stemming and stopwords (default {_DEFAULT.language})",
    "NEWSDESK_MAX_ARTICLE_BYTES": f"largest article accepted, in bytes (default {_DEFAULT.max_article_bytes})",
    "NEWSDESK_MAX_FILE_BYTES": (
        f"largest corpus file read, in bytes, on disk and once decompressed (default {_DEFAULT.max_file_bytes})"
    ),
    "NEWSDESK_INGEST_WORKERS": (
        "worker processes that parse and analyse a large corpus beside the ingest, 0-64 "
        "(default: one less than the cores; 0: none)"
    ),
    "NEWSDESK_SEARCH_PROCESSES": (
        "processes that answer the bot's questions beside its event loop, 0-8 "
        "(default: 1 with two cores or more; 0: the bot's own threads answer)"
    ),
    "NEWSDESK_LINK_TEMPLATE": "URL template for articles without their own URL, e.g. https://news.example.org/{id}",
    "NEWSDESK_PUBLIC_URL": "public address of newsdesk's own article pages, e.g. https://newsdesk.example.org",
    "NEWSDESK_WEB_HOST": f"address the article pages bind to (default {_DEFAULT.web_host})",
    "NEWSDESK_WEB_PORT": f"port the article pages bind to (default {_DEFAULT.web_port})",
    "NEWSDESK_RELOAD_EVERY": "reload the corpus on a timer, e.g. 30m, 1h, 1d (default off)",
    "NEWSDESK_WATCH_EVERY": (
        f"seconds between checks for a reload or settings change by another process (default {_DEFAULT.watch_every})"
    ),
    "NEWSDESK_SHARD_COUNT": "total gateway shards across all processes (default: one process, no sharding)",
    "NEWSDESK_SHARD_IDS": "the shard ids this process runs (comma-separated; needs NEWSDESK_SHARD_COUNT)",
    "NEWSDESK_LOG_LEVEL": f"DEBUG, INFO, WARNING or ERROR (default {_DEFAULT.log_level})",
}


def database_setting(name: str, raw: str) -> Path | str:
    """An SQLite path, or a PostgreSQL URL checked for its shape (ConfigError naming ``name`` when malformed)."""
    if not is_database_url(raw):
        return Path(raw)
    try:
        parse_database_url(raw)
    except StoreError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return raw.strip()


def read_env_file(path: Path = Path(".env")) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    require_token: bool = False,
    env_file: Path | None = Path(".env"),
) -> Settings:
    """Settings from ``environ`` (default: os.environ over the ``.env`` file)."""
    default = _DEFAULT
    if environ is None:
        merged = read_env_file(env_file) if env_file else {}
        merged.update(os.environ)
        environ = merged
    env = {k: v for k, v in environ.items() if k in SETTINGS}

    def get(name: str) -> str:
        return env.get(name, "").strip()

    token = get("DISCORD_TOKEN") or None
    if require_token and not token:
        raise ConfigError("DISCORD_TOKEN is not set: put the bot token in .env or the environment")
    if token and (len(token) < 20 or any(ch.isspace() for ch in token)):
        raise ConfigError("DISCORD_TOKEN does not look like a bot token (too short or has spaces)")

    dev_guild = None
    if get("NEWSDESK_DEV_GUILD"):
        guilds = _ids("NEWSDESK_DEV_GUILD", get("NEWSDESK_DEV_GUILD"))
        if len(guilds) > 1:
            raise ConfigError(f"NEWSDESK_DEV_GUILD must be one guild id; got {len(guilds)}")
        dev_guild = next(iter(guilds), None)

    language = (get("NEWSDESK_LANGUAGE") or default.language).lower()
    try:
        Analyzer(language)
    except ValueError as exc:
        raise ConfigError(f"NEWSDESK_LANGUAGE: {exc}") from None

    link_template = get("NEWSDESK_LINK_TEMPLATE") or None
    public_url = get("NEWSDESK_PUBLIC_URL") or None
    try:
        LinkPolicy(link_template, None)
    except LinkTemplateError as exc:
        raise ConfigError(f"NEWSDESK_LINK_TEMPLATE is refused: {exc}") from None
    try:
        LinkPolicy(None, public_url)
    except LinkTemplateError as exc:
        raise ConfigError(f"NEWSDESK_PUBLIC_URL is refused: {exc}") from None

    reload_every = None
    if get("NEWSDESK_RELOAD_EVERY") and get("NEWSDESK_RELOAD_EVERY").lower() not in ("0", "off", "never"):
        try:
            reload_every = parse_span(get("NEWSDESK_RELOAD_EVERY"))
        except ValueError as exc:
            raise ConfigError(f"NEWSDESK_RELOAD_EVERY: {exc}") from None
        if reload_every < 60:
            raise ConfigError("NEWSDESK_RELOAD_EVERY must be at least 1m")

    shard_count = _int("NEWSDESK_SHARD_COUNT", get("NEWSDESK_SHARD_COUNT"), 0, 1, 1024) or None
    shard_ids = None
    if get("NEWSDESK_SHARD_IDS"):
        if shard_count is None:
            raise ConfigError("NEWSDESK_SHARD_IDS needs NEWSDESK_SHARD_COUNT (the total number of shards)")
        shard_ids = tuple(sorted(_ids("NEWSDESK_SHARD_IDS", get("NEWSDESK_SHARD_IDS"))))
        bad = [s for s in shard_ids if s >= shard_count]
        if bad:
            raise ConfigError(
                f"NEWSDESK_SHARD_IDS has {bad[0]}, but shard ids run from 0 to {shard_count - 1}"
            )

    log_level = (get("NEWSDESK_LOG_LEVEL") or default.log_level).upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"NEWSDESK_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR; got {log_level!r}")

    message_content = (get("NEWSDESK_MESSAGE_CONTENT") or default.message_content).lower()
    if message_content not in ("on", "off", "auto"):
        raise ConfigError(f"NEWSDESK_MESSAGE_CONTENT must be on, off or auto; got {message_content!r}")

    web_host = get("NEWSDESK_WEB_HOST") or default.web_host
    if any(ch.isspace() for ch in web_host):
        raise ConfigError(f"NEWSDESK_WEB_HOST must be a host name or address; got {web_host!r}")

    return Settings(
        token=token,
        db=database_setting("NEWSDESK_DB", get("NEWSDESK_DB")) if get("NEWSDESK_DB") else default.db,
        index_cache=Path(get("NEWSDESK_INDEX_CACHE")) if get("NEWSDESK_INDEX_CACHE") else default.index_cache,
        corpus_dir=Path(get("NEWSDESK_CORPUS_DIR")) if get("NEWSDESK_CORPUS_DIR") else default.corpus_dir,
        qa_channels=_ids("NEWSDESK_QA_CHANNELS", get("NEWSDESK_QA_CHANNELS")),
        admin_users=_ids("NEWSDESK_ADMIN_USERS", get("NEWSDESK_ADMIN_USERS")),
        admin_roles=_ids("NEWSDESK_ADMIN_ROLES", get("NEWSDESK_ADMIN_ROLES")),
        dev_guild=dev_guild,
        results=_int("NEWSDESK_RESULTS", get("NEWSDESK_RESULTS"), default.results, 1, 10),
        cooldown=_int("NEWSDESK_COOLDOWN", get("NEWSDESK_COOLDOWN"), default.cooldown, 0, 3600),
        max_question=_int(
            "NEWSDESK_MAX_QUESTION", get("NEWSDESK_MAX_QUESTION"), default.max_question, 20, 1800
        ),
        language=language,
        max_article_bytes=_int(
            "NEWSDESK_MAX_ARTICLE_BYTES",
            get("NEWSDESK_MAX_ARTICLE_BYTES"),
            default.max_article_bytes,
            1_000,
            1_000_000_000,
        ),
        max_file_bytes=_int(
            "NEWSDESK_MAX_FILE_BYTES",
            get("NEWSDESK_MAX_FILE_BYTES"),
            default.max_file_bytes,
            10_000,
            1_000_000_000,
        ),
        ingest_workers=(
            _int("NEWSDESK_INGEST_WORKERS", get("NEWSDESK_INGEST_WORKERS"), 0, 0, 64)
            if get("NEWSDESK_INGEST_WORKERS")
            else None
        ),
        search_processes=(
            _int("NEWSDESK_SEARCH_PROCESSES", get("NEWSDESK_SEARCH_PROCESSES"), 0, 0, 8)
            if get("NEWSDESK_SEARCH_PROCESSES")
            else None
        ),
        link_template=link_template,
        public_url=public_url,
        web_host=web_host,
        web_port=_int("NEWSDESK_WEB_PORT", get("NEWSDESK_WEB_PORT"), default.web_port, 1, 65535),
        reload_every=reload_every,
        watch_every=_int("NEWSDESK_WATCH_EVERY", get("NEWSDESK_WATCH_EVERY"), default.watch_every, 1, 3600),
        shard_count=shard_count,
        shard_ids=shard_ids,
        log_level=log_level,
        message_content=message_content,
    )
