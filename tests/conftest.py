"""Test fixtures used across modules: small corpus folders, services over them, the bot; and the
``shared_corpus`` marker, which skips the tests that need the large corpora when they are absent.
Where the data lives: ``tests/data.py``."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.data import BBC_TAR, SAMPLE_CORPUS, SHARED_CORPUS_MISSING, need, shared_corpora_present
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture for every test)
from tests.postgres import pg_cluster, pg_url  # noqa: F401  (throwaway PostgreSQL, where installed)


def pytest_collection_modifyitems(config, items):
    # Under CI the marked tests run regardless, and fail in ``need()`` naming the missing file.
    if shared_corpora_present() or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=SHARED_CORPUS_MISSING)
    for item in items:
        if item.get_closest_marker("shared_corpus"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if SHARED_CORPUS_MISSING in str(r.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests marked shared_corpus skipped: {SHARED_CORPUS_MISSING}"
        )


@pytest.fixture(scope="session")
def bbc_folder(tmp_path_factory) -> Path:
    """The raw BBC layout (bbc/<category>/<nnn>.txt plus its README.TXT), extracted once per session."""
    root = tmp_path_factory.mktemp("bbc")
    with tarfile.open(need(BBC_TAR)) as tar:
        tar.extractall(root, filter="data")
    return root / "bbc"


@pytest.fixture
def sample_corpus(tmp_path) -> Path:
    """A writable copy of the sample corpus shipped in data/articles."""
    folder = tmp_path / "articles"
    shutil.copytree(SAMPLE_CORPUS, folder)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@pytest.fixture
def service(tmp_path, sample_corpus):
    from retrieval.service import NewsService

    svc = NewsService(tmp_path / "newsdesk.db", sample_corpus)
    svc.reload()
    yield svc
    svc.close()


@pytest.fixture
async def bot(discord_stub, service):  # noqa: F811
    """The newsdesk bot, connected to the local Discord stub, over ``service``."""
    from tests.bot_harness import build_world, running_bot

    build_world(discord_stub)
    async with running_bot(discord_stub, service) as running:
        yield running
