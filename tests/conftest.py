"""Shared test fixtures: paths to the shared corpora, small corpus folders and services over them."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture for every test)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEED = SHARED / "corpora" / "seed" / "000_7259aed06ac303ba.txt"
BBC_TAR = SHARED / "corpora" / "bbc" / "bbc-fulltext.tar.gz"
SAMPLE_CORPUS = REPO / "data" / "articles"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test data missing: {path} (the shared corpora must sit beside the repository)")
    return path


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
