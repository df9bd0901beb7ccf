"""Background tasks start here, so that an exception in one is logged instead of lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)
_running: set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task:
    """Start ``coro`` as a task that is kept alive until done and whose failure is logged."""
    task = asyncio.create_task(coro, name=name)
    _running.add(task)

    def finished(t: asyncio.Task) -> None:
        _running.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("background task %s failed", name, exc_info=t.exception())

    task.add_done_callback(finished)
    return task
