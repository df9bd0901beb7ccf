"""The schema of each back end as numbered SQL files, applied in order and recorded in ``schema_migrations``.

``sqlite/NNN_name.sql`` and ``postgres/NNN_name.sql``: one list per back end, numbered from 001. A migration is
never edited once released; a change to the schema is a new file. The two lists usually grow together, but a
back end may have a migration the other lacks (a feature only one of them has).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

BACKENDS = ("sqlite", "postgres")
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str  # the file name without ".sql", e.g. "002_server_settings"
    sql: str


@cache
def migrations(backend: str) -> tuple[Migration, ...]:
    """The migrations of ``backend`` ("sqlite" or "postgres"), in order."""
    if backend not in BACKENDS:
        raise ValueError(f"no migrations for {backend!r}")
    found: dict[int, Migration] = {}
    for entry in resources.files(__package__).joinpath(backend).iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two {backend} migrations are numbered {version:03d}")
        found[version] = Migration(version, entry.name[:-4], entry.read_text(encoding="utf-8"))
    return tuple(found[v] for v in sorted(found))


def latest(backend: str) -> int:
    listed = migrations(backend)
    return listed[-1].version if listed else 0
