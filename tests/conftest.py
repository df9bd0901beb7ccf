"""Test fixtures used across modules: small corpus folders, services over them, the bot; the
``shared_corpus`` marker, which skips the tests that need the large corpora when they are absent; and the
``both_stores`` marker, which runs a module's tests that use ``store_target`` (or ``service``, ``bot``) on
SQLite and on PostgreSQL. Where the data lives: ``tests/data.py``."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.data import BBC_TAR, SAMPLE_CORPUS, SHARED_CORPUS_MISSING, need, shared_corpora_present
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture for every test)
from tests.postgres import POSTGRES_MISSING, pg_cluster, pg_url  # noqa: F401  (throwaway PostgreSQL)

STORES = ("sqlite", "postgres")


def pytest_generate_tests(metafunc):
    """In a module (or test) marked ``both_stores``, each test that uses ``store_target`` runs once per back
    end; ``sqlite_only`` keeps one test on SQLite alone (it looks at the file itself)."""
    definition = metafunc.definition
    if (
        "store_target" in metafunc.fixturenames
        and definition.get_closest_marker("both_stores")
        and not definition.get_closest_marker("sqlite_only")
    ):
        metafunc.parametrize("store_target", STORES, indirect=True)


def pytest_collection_modifyitems(config, items):
    # A test on a database runs on both back ends, or says why it stays on SQLite: none stays there by default.
    unmarked = [
        item.nodeid
        for item in items
        if "store_target" in getattr(item, "fixturenames", ())
        and not item.get_closest_marker("both_stores")
        and not item.get_closest_marker("sqlite_only")
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests open a database (store_target, service or bot) but are marked neither both_stores"
            " nor sqlite_only (with its reason): " + ", ".join(unmarked)
        )
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
    on_postgres = [
        r for r in terminalreporter.stats.get("skipped", []) if POSTGRES_MISSING in str(r.longrepr)
    ]
    if on_postgres:
        terminalreporter.write_line(f"{len(on_postgres)} PostgreSQL tests skipped: {POSTGRES_MISSING}")


@pytest.fixture
def stores():
    """Open stores (``stores(target)``) that are closed when the test ends: a PostgreSQL store holds a
    connection pool and its threads."""
    from retrieval.store import open_store

    opened = []

    def open_one(target, **options):
        store = open_store(target, **options)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store_target(request, tmp_path) -> str:
    """Where the test's database lives: an SQLite file, or (the ``postgres`` run of a ``both_stores`` test)
    a fresh database of the throwaway PostgreSQL cluster, as a URL."""
    if getattr(request, "param", "sqlite") == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "newsdesk.db")


@pytest.fixture(scope="module", params=STORES)
def module_store_target(request, tmp_path_factory) -> str:
    """``store_target`` for a module-scoped fixture (one database built once, read by many tests): an SQLite
    file, then a database of the throwaway PostgreSQL cluster. Every test that uses it runs on both."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_cluster").new_database()
    return str(tmp_path_factory.mktemp("db") / "newsdesk.db")


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
def service(store_target, tmp_path, sample_corpus):
    from retrieval.service import NewsService

    svc = NewsService(store_target, sample_corpus, index_cache=tmp_path / "index-cache")
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
