"""Run the unmodified ``newsdesk run`` in a subprocess, with discord.py pointed at a local Discord stub.

    python tests/stub_process.py BASE_URL GATEWAY_URL [newsdesk arguments...]

Only the two discord.py endpoints are changed, here in the test tooling; the bot's code is untouched.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import discord.gateway  # noqa: E402
import discord.http  # noqa: E402
import yarl  # noqa: E402

from bot.cli import main  # noqa: E402

if __name__ == "__main__":
    base, gateway, *args = sys.argv[1:]
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
    sys.exit(main(args or ["run"]))
