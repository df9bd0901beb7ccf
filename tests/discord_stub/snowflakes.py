"""Snowflake ids and timestamps in Discord's formats."""

from __future__ import annotations

import datetime
import itertools
import time

DISCORD_EPOCH_MS = 1420070400000


class SnowflakeFactory:
    """Generates increasing snowflakes whose timestamp part is the current time."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> int:
        stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        value = stamp | (next(self._counter) & 0xFFF)
        self._last = value = max(value, self._last + 1)
        return value


def iso_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def shard_of(guild_id: int, shard_count: int) -> int:
    return (int(guild_id) >> 22) % max(shard_count, 1)
