"""A reload run in a child process: the parent swaps in what the child built, and a failed or stopped child
changes nothing."""

from __future__ import annotations

import shutil

import pytest

from retrieval.errors import CorpusError
from tests.bot_harness import corpus_file

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

QUESTION = "lighthouse keeper seals Orkney"
TITLE = "Lighthouse Keeper Counts Seals"


def add_article(folder):
    corpus_file(
        folder,
        "briefs/lighthouse.txt",
        TITLE,
        "The last lighthouse keeper on Orkney counted four hundred grey seals on the rocks this winter.",
    )


def titles(service, question):
    return [r.title for r in service.search(question, k=3).results]


def test_a_reload_in_a_child_process_is_swapped_in_here(service, sample_corpus):
    before = service.snapshot.version
    add_article(sample_corpus)
    seen = []
    summary = service.reload(in_child=True, progress=lambda done, total: seen.append((done, total)))
    assert (summary.added, summary.failed) == (1, 0)
    assert seen and seen[-1][0] == seen[-1][1] == summary.files
    assert service.snapshot.version == summary.corpus_version > before
    assert TITLE in titles(service, QUESTION)
    assert service.last_reload is not None and service.last_reload.ok
    assert service.last_reload.summary is not None and service.last_reload.summary.added == 1
    unchanged = service.reload(in_child=True)
    assert unchanged.changed_anything is False and service.snapshot.version == summary.corpus_version


def test_an_error_in_the_child_is_raised_here_and_the_old_corpus_keeps_answering(service, sample_corpus):
    version = service.snapshot.version
    before = titles(service, "who discovered the comet?")
    shutil.rmtree(sample_corpus)
    with pytest.raises(CorpusError):
        service.reload(in_child=True)
    assert service.snapshot.version == version == service.store.corpus_version()
    assert titles(service, "who discovered the comet?") == before
    assert service.last_reload is not None and service.last_reload.ok is False


def test_a_child_stopped_mid_reload_leaves_the_database_and_the_snapshot_as_they_were(service, sample_corpus):
    version = service.snapshot.version
    add_article(sample_corpus)

    def stop(done, total):
        raise KeyboardInterrupt  # the parent stops; the child is killed in the middle of its transaction

    with pytest.raises(KeyboardInterrupt):
        service.reload(in_child=True, progress=stop)
    assert not service.reloading
    assert service.store.corpus_version() == version == service.snapshot.version
    assert TITLE not in titles(service, QUESTION)
    summary = service.reload(in_child=True)  # nothing was left half done: the next reload simply works
    assert summary.added == 1 and TITLE in titles(service, QUESTION)
