"""What the stub observed: REST requests, interactions and their answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

DEFERRED_TYPES = {5, 6}

# How long a test waits for something the bot should do. A wait ends as soon as its condition holds, so a generous
# limit costs nothing when the bot works; it only keeps a busy machine (CI beside other jobs, numba compiling on a
# first search) from failing a test that would have passed a few seconds later.
WAIT_SECONDS = 20.0


async def wait_for(
    predicate: Callable[[], T], *, timeout: float = WAIT_SECONDS, interval: float = 0.01, what: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout}s{': ' + what if what else ''}")
        await asyncio.sleep(interval)


@dataclass
class RecordedRequest:
    """One REST request the client made. ``headers`` never holds the Authorization header."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[dict[str, Any]]
    headers: dict[str, str]
    authorized: bool
    status: int = 0
    known_route: bool = True
    at: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} -> {self.status}>"


@dataclass
class InteractionRecord:
    """An interaction the stub sent to the bot, and everything the bot answered to it."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    channel_id: int
    created_at: float = field(default_factory=time.monotonic)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    edits: int = 0
    _messages: Callable[[int], dict[str, Any] | None] = field(default=lambda _id: None, repr=False)

    @property
    def callback_types(self) -> list[int]:
        return [c["type"] for c in self.callbacks]

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def original(self) -> dict[str, Any] | None:
        """The original response message as it stands now (None if none or deleted)."""
        if self.original_message_id is None:
            return None
        return self._messages(self.original_message_id)

    @property
    def followups(self) -> list[dict[str, Any]]:
        """Follow-up messages as they stand now (deleted ones left out)."""
        found = (self._messages(i) for i in self.followup_ids)
        return [m for m in found if m is not None]

    @property
    def done(self) -> bool:
        """Acknowledged, and if that was a deferral, followed up or edited since."""
        if not self.callbacks:
            return False
        if self.callbacks[0]["type"] in DEFERRED_TYPES:
            return bool(self.followup_ids) or self.edits > 0
        return True

    async def wait_acknowledged(self, timeout: float = WAIT_SECONDS) -> InteractionRecord:
        await wait_for(lambda: self.acknowledged, timeout=timeout, what=f"interaction {self.id} acknowledged")
        return self

    async def wait_done(self, timeout: float = WAIT_SECONDS) -> InteractionRecord:
        await wait_for(lambda: self.done, timeout=timeout, what=f"interaction {self.id} answered")
        return self
