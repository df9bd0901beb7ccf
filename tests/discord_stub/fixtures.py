"""Pytest fixtures: a started DiscordStub installed into discord.py for the test's duration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from . import DiscordStub


@pytest.fixture
async def discord_stub(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordStub]:
    stub = DiscordStub()
    await stub.start()
    stub.install(monkeypatch)
    try:
        yield stub
    finally:
        await stub.close()
