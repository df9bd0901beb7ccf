"""Per-member question cooldown."""

from __future__ import annotations

import time
from collections import OrderedDict


class Cooldown:
    """One question per ``seconds`` per member. Remembers at most ``max_members`` recent askers."""

    def __init__(self, seconds: float, *, max_members: int = 10_000) -> None:
        self.seconds = seconds
        self.max_members = max_members
        self._last: OrderedDict[int, float] = OrderedDict()

    def retry_after(self, user_id: int, *, now: float | None = None) -> float:
        """0 when the member may ask now (and the question is counted); else the seconds left."""
        if self.seconds <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            return self.seconds - (now - last)
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        while len(self._last) > self.max_members:
            self._last.popitem(last=False)
        return 0.0
