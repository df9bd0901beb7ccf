"""What the service reports about itself: the latest ingest run, the latest reload, its counts, and the
answers members rated. Frozen records, so that a renamed column fails here and not in an embed."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .ingest import IngestSummary


@dataclass(frozen=True, slots=True)
class IngestRun:
    """One ingest or reload as the database recorded it, by whichever process ran it."""

    started_at: str | None
    finished_at: str | None
    trigger: str | None
    status: str | None  # "ok" or "failed"
    added: int | None
    changed: int | None
    unchanged: int | None
    removed: int | None
    failed: int | None
    corpus_version: int | None
    error: str | None
    seconds: float | None = None
    corpus_dir: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> IngestRun:
        failures = row.get("failures")
        return cls(
            started_at=row.get("started_at"),
            finished_at=row.get("finished_at"),
            trigger=row.get("trigger"),
            status=row.get("status"),
            added=row.get("added"),
            changed=row.get("changed"),
            unchanged=row.get("unchanged"),
            removed=row.get("removed"),
            failed=row.get("failed"),
            corpus_version=row.get("corpus_version"),
            error=row.get("error"),
            seconds=row.get("seconds"),
            corpus_dir=row.get("corpus_dir"),
            failures=json.loads(failures) if isinstance(failures, str) and failures else [],
        )

    def to_json(self) -> dict[str, Any]:
        """The run as ``/healthz`` reports it."""
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "trigger": self.trigger,
            "status": self.status,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "failed": self.failed,
            "corpus_version": self.corpus_version,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class ReloadStatus:
    """How the latest reload made in this process ended: its summary, or the error it was refused with."""

    ok: bool
    at: float  # time.time() when it ended
    summary: IngestSummary | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "summary": self.summary.to_json() if self.summary else None, "at": self.at}
        return {"ok": False, "error": self.error, "at": self.at}


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    """Whether this process reaches its database; while it does not, it answers from the index it loaded."""

    reachable: bool = True
    error: str | None = None  # the last failure, in one line
    since: float | None = None  # time.time() when it stopped answering

    def to_json(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "error": self.error, "unreachable_since": self.since}


@dataclass(frozen=True, slots=True)
class ServiceStats:
    articles: int
    passages: int
    corpus_version: int
    index_loaded_at: float | None  # time.time() when the serving index was swapped in
    uptime_seconds: float
    last_run: IngestRun | None  # the latest run in the database, made by any process
    last_reload: ReloadStatus | None  # the latest reload made by this process
    reloading: bool
    database: DatabaseStatus = field(default_factory=DatabaseStatus)


@dataclass(frozen=True, slots=True)
class RatedAnswer:
    created_at: str
    question: str
    article_ids: list[str]


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """The latest answers rated 👎, and the articles most often shown in them, with how often."""

    latest: list[RatedAnswer]
    worst: list[tuple[str, int]]
