"""Per-server settings in the store: one row per server, a log of every change, a version to watch.

Tables a person can read with ``sqlite-utils`` or Datasette:

- ``server_settings``: one row per server (``guild_id``) that changed something. A NULL column means
  "not set here: use the default"; lists are JSON arrays of ids (as strings). ``changed_by`` and
  ``changed_at`` name the latest change; ``left_at`` is when the bot was removed from the server.
- ``server_settings_changes``: who changed which setting of which server, when, from what to what.
- ``meta``: ``settings_version``, bumped by every change, so that other processes sharing the database
  know to read the table again.

Every change is one transaction: the row, its log lines and the version commit together. The SQL here is
portable (``?`` placeholders, nothing specific to one back end) and runs through the store
(:meth:`Store.query`) and its writer (:meth:`StoreWriter.execute`), on SQLite and PostgreSQL alike; the
tables themselves are made by the store's migrations.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .errors import StoreError
from .store import MEMBER_WRITE_WAIT_SECONDS

if TYPE_CHECKING:
    from .store import Store, StoreWriter

# The settings a server can set, in the order they are shown.
SETTING_NAMES = ("qa_channels", "admin_roles", "results", "cooldown")
LIST_SETTINGS = ("qa_channels", "admin_roles")
# How long the settings of a server the bot was removed from are kept (a re-invite within this finds them).
KEEP_AFTER_LEAVING = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """One server's own values; None means "not set here" (the default applies)."""

    guild_id: int
    qa_channels: frozenset[int] | None = None
    admin_roles: frozenset[int] | None = None
    results: int | None = None
    cooldown: int | None = None
    changed_by: int | None = None
    changed_at: str | None = None
    left_at: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in SETTING_NAMES)

    def without_own_values(self) -> ServerSettings:
        return replace(self, qa_channels=None, admin_roles=None, results=None, cooldown=None)


@dataclass(frozen=True, slots=True)
class SettingChange:
    changed_at: str
    guild_id: int
    user_id: int | None
    setting: str
    old_value: str | None
    new_value: str | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def utcnow_iso() -> str:
    return _iso(datetime.now(UTC))


def _ids_json(ids: frozenset[int] | None) -> str | None:
    return None if ids is None else json.dumps(sorted(str(i) for i in ids))


def _ids_from_json(raw: str | None) -> frozenset[int] | None:
    return None if raw is None else frozenset(int(i) for i in json.loads(raw))


def _column_value(settings: ServerSettings, name: str) -> str | int | None:
    value = getattr(settings, name)
    return _ids_json(value) if name in LIST_SETTINGS else value


_COLUMNS = "guild_id, qa_channels, admin_roles, results, cooldown, changed_by, changed_at, left_at"


def _from_row(row: tuple) -> ServerSettings:
    guild_id, qa, roles, results, cooldown, changed_by, changed_at, left_at = row
    return ServerSettings(
        guild_id=int(guild_id),
        qa_channels=_ids_from_json(qa),
        admin_roles=_ids_from_json(roles),
        results=results,
        cooldown=cooldown,
        changed_by=int(changed_by) if changed_by else None,
        changed_at=changed_at,
        left_at=left_at,
    )


class ServerSettingsTable:
    """Reads and writes of the per-server settings, through one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reads ---------------------------------------------------------------------------------
    def version(self) -> int:
        rows = self.store.query("SELECT value FROM meta WHERE key = 'settings_version'")
        return int(rows[0][0]) if rows else 0

    def all(self) -> dict[int, ServerSettings]:
        try:
            rows = self.store.query(f"SELECT {_COLUMNS} FROM server_settings")
        except StoreError as exc:
            if "no such table" in str(exc):  # an old read-only SQLite file: nothing set anywhere
                return {}
            raise
        return {int(row[0]): _from_row(row) for row in rows}

    def get(self, guild_id: int) -> ServerSettings | None:
        rows = self.store.query(f"SELECT {_COLUMNS} FROM server_settings WHERE guild_id = ?", [str(guild_id)])
        return _from_row(rows[0]) if rows else None

    def changes(self, guild_id: int, limit: int = 50) -> list[SettingChange]:
        """The latest changes of one server, newest first."""
        rows = self.store.query(
            "SELECT changed_at, guild_id, user_id, setting, old_value, new_value FROM server_settings_changes"
            " WHERE guild_id = ? ORDER BY id DESC LIMIT ?",
            [str(guild_id), int(limit)],
        )
        return [
            SettingChange(at, int(gid), int(uid) if uid else None, setting, old, new)
            for at, gid, uid, setting, old, new in rows
        ]

    # -- writes --------------------------------------------------------------------------------
    def update(
        self,
        guild_id: int,
        change: Callable[[ServerSettings], ServerSettings],
        *,
        user_id: int | None,
        now: str | None = None,
    ) -> ServerSettings:
        """Apply ``change`` to the server's stored settings in one transaction, log what it changed and
        bump ``settings_version``. ``change`` sees the row as committed, so two processes changing the
        same server one after the other both keep their change. Returns the settings now stored."""
        now = now or utcnow_iso()
        with self._writing() as writer:
            rows = writer.execute(
                f"SELECT {_COLUMNS} FROM server_settings WHERE guild_id = ?", [str(guild_id)]
            ).fetchall()
            before = _from_row(rows[0]) if rows else ServerSettings(guild_id)
            after = change(before)
            changed = [name for name in SETTING_NAMES if getattr(before, name) != getattr(after, name)]
            if not changed:
                return before
            # A change made from the server means the bot is in it: nothing is waiting to be dropped.
            after = replace(after, guild_id=guild_id, changed_by=user_id, changed_at=now, left_at=None)
            for name in changed:
                self._log(writer, now, guild_id, user_id, name, before, after)
            writer.execute("DELETE FROM server_settings WHERE guild_id = ?", [str(guild_id)])
            if not after.is_empty():
                self._put(writer, after)
            self._bump(writer)
            return after

    def mark_left(self, guild_id: int, *, now: str | None = None) -> bool:
        """The bot was removed from the server: its settings are kept for ``KEEP_AFTER_LEAVING``."""
        return self._set_left_at(guild_id, now or utcnow_iso())

    def mark_back(self, guild_id: int) -> bool:
        """The bot is in the server again (re-invited): its settings are kept for good again."""
        return self._set_left_at(guild_id, None)

    def drop_left_before(self, cutoff: str, *, now: str | None = None) -> list[int]:
        """Delete the settings of servers the bot left before ``cutoff`` (ISO time); returns their ids."""
        now = now or utcnow_iso()
        with self._writing() as writer:
            gone = [
                int(row[0])
                for row in writer.execute(
                    "SELECT guild_id FROM server_settings WHERE left_at IS NOT NULL AND left_at < ?"
                    " ORDER BY guild_id",
                    [cutoff],
                ).fetchall()
            ]
            for guild_id in gone:
                writer.execute(
                    "INSERT INTO server_settings_changes (changed_at, guild_id, user_id, setting, old_value,"
                    " new_value) VALUES (?, ?, NULL, 'all', 'kept after the bot left', 'dropped')",
                    [now, str(guild_id)],
                )
                writer.execute("DELETE FROM server_settings WHERE guild_id = ?", [str(guild_id)])
            if gone:
                self._bump(writer)
            return gone

    def drop_expired(self, *, now: datetime | None = None) -> list[int]:
        """Delete the settings of servers the bot left more than ``KEEP_AFTER_LEAVING`` ago."""
        now = now or datetime.now(UTC)
        return self.drop_left_before(_iso(now - KEEP_AFTER_LEAVING), now=_iso(now))

    # -- helpers -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[StoreWriter]:
        """One transaction: the row, its log lines and the version commit together or not at all. Changes of
        settings from any process wait for each other (they read, then write)."""
        with self.store.writer(wait=MEMBER_WRITE_WAIT_SECONDS) as writer:
            writer.serialize("server_settings")
            yield writer

    def _set_left_at(self, guild_id: int, left_at: str | None) -> bool:
        with self._writing() as writer:
            rows = writer.execute(
                "SELECT left_at FROM server_settings WHERE guild_id = ?", [str(guild_id)]
            ).fetchall()
            if not rows or rows[0][0] == left_at:
                return False
            writer.execute(
                "UPDATE server_settings SET left_at = ? WHERE guild_id = ?", [left_at, str(guild_id)]
            )
            writer.execute(
                "INSERT INTO server_settings_changes (changed_at, guild_id, user_id, setting, old_value,"
                " new_value) VALUES (?, ?, NULL, 'left_at', NULL, ?)",
                [utcnow_iso(), str(guild_id), left_at],
            )
            return True

    @staticmethod
    def _put(writer: StoreWriter, settings: ServerSettings) -> None:
        values = [
            str(settings.guild_id),
            *(_column_value(settings, name) for name in SETTING_NAMES),
            str(settings.changed_by) if settings.changed_by else None,
            settings.changed_at,
            settings.left_at,
        ]
        writer.execute(f"INSERT INTO server_settings ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", values)

    @staticmethod
    def _log(
        writer: StoreWriter,
        now: str,
        guild_id: int,
        user_id: int | None,
        name: str,
        before: ServerSettings,
        after: ServerSettings,
    ) -> None:
        old, new = _column_value(before, name), _column_value(after, name)
        writer.execute(
            "INSERT INTO server_settings_changes (changed_at, guild_id, user_id, setting, old_value, new_value)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                now,
                str(guild_id),
                str(user_id) if user_id else None,
                name,
                None if old is None else str(old),
                None if new is None else str(new),
            ],
        )

    @staticmethod
    def _bump(writer: StoreWriter) -> None:
        writer.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'settings_version'",
        )
