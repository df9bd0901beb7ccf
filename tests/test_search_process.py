"""Search processes: questions answered in another process give the same answers as in the bot's own; a
process killed, stopped or following a reload loses no question; the bot answers /ask through one, and
without it, through discord.py against the local Discord stub."""

from __future__ import annotations

import asyncio
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace

import pytest

import retrieval.search_process as search_process
from retrieval import Answer, SearchProcesses
from retrieval.models import PickledAsCall
from tests.bot_harness import GENERAL, READER, build_world, embed_text, running_bot, shown
from tests.data import REPO, descendants, process_alive
from tests.discord_stub.fixtures import discord_stub  # noqa: F401  (fixture)
from tests.discord_stub.records import wait_for
from tests.test_faults import write_article

pytestmark = pytest.mark.both_stores  # on SQLite and on PostgreSQL

MANBIJ = "when did the SDF encircle Manbij?"
QUOTE = "> After fully encircling Manbij on June 8"
START = 60.0  # seconds a process may take to start on a busy machine


def comparable(answer: Answer) -> dict:
    shown = answer.to_json()
    shown.pop("took_ms", None)
    return shown


def ask(processes: SearchProcesses, question: str, **fields) -> asyncio.Future:
    fields = {"k": 3, "offset": 0, "context": [], **fields}
    return asyncio.ensure_future(processes.search(question=question, **fields))


@pytest.fixture
async def processes(service, monkeypatch):
    monkeypatch.setattr(search_process, "RESTART_AFTER", (0.05, 0.2))
    started = SearchProcesses(service, 1)
    started.start()
    await wait_for(lambda: started.answering == 1, timeout=START, what="the search process answering")
    yield started
    await started.close()


def test_an_answer_reaches_the_bot_whole(service):
    """Answers cross from a search process by pickle, as calls of their classes on their fields: every field,
    none of them at its default, comes back in its place."""
    found = service.search("who surrounded Manbij in 2016?", k=3)
    assert found.results
    answer = replace(
        found,
        took_ms=1.5,
        total=7,
        offset=2,
        has_more=True,
        corrections=[("manbji", "manbij")],
        context=("earlier question",),
        results=[replace(found.results[0], missing=("kurdish",))] + found.results[1:],
    )
    back = pickle.loads(pickle.dumps(answer))
    assert back == answer and back is not answer
    assert back.results[0].excerpt == answer.results[0].excerpt and back.results[0].missing == ("kurdish",)


def test_a_record_a_call_would_not_rebuild_is_refused_where_it_is_defined():
    with pytest.raises(TypeError, match="every field an __init__ argument"):

        @dataclass(slots=True)
        class Counted(PickledAsCall):
            text: str
            length: int = field(init=False, default=0)


async def test_answers_from_a_search_process_are_the_bots_own(service, processes):
    cases = [
        (MANBIJ, {}),
        ("who surrounded Manbij in 2016?", {}),
        ("what did they do next?", {"context": [MANBIJ]}),  # a follow-up
        ("Manbij", {"offset": 1, "k": 1}),  # a second page
        ("zorblax quantum fnord", {}),  # nothing in the archive
    ]
    for question, fields in cases:
        got = await ask(processes, question, **fields)
        assert got is not None, question
        expected = service.search(question, **{"k": 3, "offset": 0, **fields})
        assert comparable(got) == comparable(expected), question
    assert processes.answered == len(cases)
    (pid,) = processes.pids()
    assert pid != os.getpid()
    assert processes.status() == {"configured": 1, "answering": 1, "answered": len(cases)}


async def test_a_killed_process_hands_back_its_questions_and_starts_again(processes):
    (old,) = processes.pids()
    os.kill(old, signal.SIGSTOP)  # holds the question below in its socket until it is killed
    in_flight = ask(processes, MANBIJ)
    await asyncio.sleep(0.1)
    assert not in_flight.done()
    os.kill(old, signal.SIGKILL)
    assert await asyncio.wait_for(in_flight, 10) is None  # handed back: the caller answers it in-process
    assert processes.answering == 0
    assert await asyncio.wait_for(ask(processes, MANBIJ), 10) is None  # until a new one answers
    await wait_for(lambda: processes.answering == 1, timeout=START, what="a new search process")
    assert processes.pids() != [old] and not process_alive(old)
    answer = await ask(processes, MANBIJ)
    assert answer is not None and QUOTE[2:] in answer.results[0].excerpt.text


async def test_a_stuck_process_is_replaced_and_its_question_answered_in_process(processes, monkeypatch):
    monkeypatch.setattr(search_process, "QUESTION_TIMEOUT", 0.5)
    (old,) = processes.pids()
    os.kill(old, signal.SIGSTOP)
    assert await asyncio.wait_for(ask(processes, MANBIJ), 10) is None  # after QUESTION_TIMEOUT, not never
    assert processes.answering == 0  # no more questions sent to it
    await wait_for(lambda: processes.answering == 1, timeout=START, what="a new search process")
    assert processes.pids() != [old] and not process_alive(old)
    assert await ask(processes, MANBIJ) is not None


# On PostgreSQL a missing local index is downloaded from the database first (as the bot's is), so removing the
# folder does not leave it missing there; the refusal to build is the same code on both.
@pytest.mark.sqlite_only
async def test_a_process_never_builds_a_missing_index(service, monkeypatch):
    monkeypatch.setattr(search_process, "RESTART_AFTER", (0.05, 0.2))
    folder = service.index_root / f"v{service.serving()[0]}"
    assert folder.is_dir()
    shutil.rmtree(folder)  # the bot serves the index it holds; no saved copy to share
    processes = SearchProcesses(service, 1)
    processes.start()
    try:
        (process,) = processes._processes
        await wait_for(lambda: process.started >= 3, timeout=START, what="start attempts")
        assert processes.answering == 0 and await ask(processes, MANBIJ) is None
        assert not folder.exists()  # refused to start rather than build one while questions wait
    finally:
        await processes.close()


async def test_a_reload_is_followed_before_the_process_answers_again(service, processes, sample_corpus):
    before = service.serving()
    write_article(
        sample_corpus,
        "comet.txt",
        "Comet Halvorsen seen over Reykjavik",
        "Astronomers in Reykjavik photographed comet Halvorsen on Tuesday night.",
    )
    service.reload()
    assert service.serving() != before
    question = "when was comet Halvorsen photographed?"
    # The first question after the swap is handed back while the process picks up the new version.
    assert await ask(processes, question) is None
    await wait_for(lambda: processes.answering == 1, timeout=START, what="the new version picked up")
    answer = await ask(processes, question)
    assert answer is not None
    assert answer.results[0].title == "Comet Halvorsen seen over Reykjavik"
    assert comparable(answer) == comparable(service.search(question, k=3))


async def test_an_empty_archive_is_left_to_the_bot_to_say(tmp_path, monkeypatch, store_target):
    from retrieval import EmptyArchive, NewsService

    empty = tmp_path / "empty"
    empty.mkdir()
    service = NewsService(store_target, empty, index_cache=tmp_path / "index-cache")
    service.reload()
    processes = SearchProcesses(service, 1)
    processes.start()
    try:
        await wait_for(lambda: processes.answering == 1, timeout=START, what="the search process answering")
        assert await ask(processes, MANBIJ) is None  # answered in-process, where the member hears why
        with pytest.raises(EmptyArchive):
            service.search(MANBIJ)
    finally:
        await processes.close()
        service.close()


async def test_no_processes_answer_nothing_and_start_nothing(service):
    processes = SearchProcesses(service, 0)
    processes.start()
    assert await ask(processes, MANBIJ) is None
    assert processes.pids() == [] and processes.status()["configured"] == 0
    await processes.close()


async def test_the_bot_answers_slash_ask_through_its_search_process(discord_stub, service):  # noqa: F811
    build_world(discord_stub)
    async with running_bot(discord_stub, service, search_processes=1) as bot:
        processes = bot.search_processes
        await wait_for(lambda: processes.answering == 1, timeout=START, what="the search process answering")
        record = await discord_stub.invoke_command(
            "ask", {"question": MANBIJ}, user_id=READER, channel_id=GENERAL
        )
        await record.wait_done(timeout=10)
        assert QUOTE in shown(embed_text(record.original))
        assert processes.answered == 1
        assert bot.health()["search_processes"] == {"configured": 1, "answering": 1, "answered": 1}

        # Without it, the bot's own threads answer the same.
        (pid,) = processes.pids()
        os.kill(pid, signal.SIGKILL)
        await wait_for(lambda: processes.answering == 0, what="the killed process noticed")
        record = await discord_stub.invoke_command(
            "ask", {"question": MANBIJ}, user_id=READER, channel_id=GENERAL
        )
        await record.wait_done(timeout=10)
        assert QUOTE in shown(embed_text(record.original))
        assert processes.answered == 1
        await wait_for(lambda: processes.answering == 1, timeout=START, what="the process started again")
        restarted = processes.pids()
    await wait_for(
        lambda: not any(process_alive(p) for p in restarted), what="the process stopped with the bot"
    )


_BOT_LIKE = """
import asyncio, sys
from retrieval import NewsService, SearchProcesses

async def main():
    service = NewsService(sys.argv[1], sys.argv[2], index_cache=sys.argv[3], create=False)
    processes = SearchProcesses(service, 1)
    processes.start()
    while processes.answering < 1:
        await asyncio.sleep(0.05)
    print("ANSWERING", flush=True)
    await asyncio.sleep(60)  # killed meanwhile

asyncio.run(main())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
async def test_a_killed_bot_leaves_no_search_process_running(service, sample_corpus, tmp_path):
    script = tmp_path / "bot_like.py"
    script.write_text(_BOT_LIKE, encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(service.db_path),
            str(sample_corpus),
            str(tmp_path / "index-cache"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert await asyncio.to_thread(proc.stdout.readline) == "ANSWERING\n"
        (child,) = descendants(proc.pid)
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while process_alive(child):
            assert time.monotonic() < deadline, "the search process outlived the killed bot"
            await asyncio.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("closed", ["before it is ready", "while it answers"])
def test_a_process_whose_bot_is_gone_ends_quietly(service, closed):
    """The bot closing its end (it stopped, or gave up on the process) ends the process with status 0 and
    nothing on its error output: no traceback in the bot's log over a process that had nobody to answer."""
    mine, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-m", "retrieval.search_process", str(theirs.fileno()), str(os.getpid())],
        pass_fds=(theirs.fileno(),),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=search_process._child_env(),
    )
    theirs.close()
    try:
        mine.sendall(search_process._frame(service.process_config()))
        if closed == "while it answers":
            stream = mine.makefile("rb")
            assert search_process._receive(stream)[0] == search_process.READY
            mine.sendall(search_process._frame((1, service.serving(), {"question": MANBIJ, "k": 3})))
            stream.close()
        mine.close()
        _, errors = proc.communicate(timeout=START)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, errors.decode()) == (0, "")
