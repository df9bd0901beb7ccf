"""Run the ``newsdesk`` command as a user would: a real subprocess, without the caller's newsdesk settings."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.data import REPO


def newsdesk(*args, cwd, stdin=None, env=None, timeout=120) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSDESK_", "DISCORD_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env={**full_env, "PYTHONPATH": str(REPO)},
        timeout=timeout,
    )
