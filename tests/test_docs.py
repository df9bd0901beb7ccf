"""Every setting, command and flag a user can use is documented."""

from __future__ import annotations

import re

import pytest

from bot.cli import build_parser
from bot.config import SETTINGS
from tests.data import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (REPO / ".env.example").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_setting_is_in_the_readme_and_env_example(name):
    assert f"`{name}`" in README
    assert re.search(rf"^{name}=", ENV_EXAMPLE, re.M)


def test_env_example_has_no_unknown_settings():
    names = set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE, re.M))
    assert names == set(SETTINGS)


def _cli_commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        flags = [
            opt for action in command._actions for opt in action.option_strings if opt not in ("-h", "--help")
        ]
        yield name, flags


@pytest.mark.parametrize(("command", "flags"), list(_cli_commands()))
def test_every_cli_command_and_flag_is_in_the_readme(command, flags):
    assert f"newsdesk {command}" in README
    row = next(line for line in README.splitlines() if line.startswith(f"| `newsdesk {command}"))
    for flag in flags:
        assert flag in row, f"{flag} of `newsdesk {command}` is not documented"


def test_the_readme_starts_with_the_two_commands():
    blocks = re.findall(r"```sh\n(.+?)\n```", README, re.S)
    assert blocks[0].endswith("newsdesk run")
    assert blocks[1].endswith("pytest -q")
    ci = (REPO / ".ci" / "run").read_text()
    assert ".venv/bin/pytest -q" in ci
