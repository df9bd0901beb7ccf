"""A local stand-in for Discord's HTTP and gateway APIs, for end-to-end tests through discord.py."""

from .interactions import InteractionRejected
from .messages import ApiError
from .records import InteractionRecord, RecordedRequest, wait_for
from .stub import DiscordStub
from .world import ADMINISTRATOR, ALL_PERMISSIONS, DEFAULT_EVERYONE_PERMISSIONS, MANAGE_GUILD

__all__ = [
    "ADMINISTRATOR",
    "ALL_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "MANAGE_GUILD",
    "ApiError",
    "DiscordStub",
    "InteractionRecord",
    "InteractionRejected",
    "RecordedRequest",
    "wait_for",
]
