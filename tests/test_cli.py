"""The newsdesk command as a user runs it: real subprocesses, real databases (an SQLite file, and the same
commands on PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from retrieval.migrations import migrations
from retrieval.store import is_database_url
from tests.cli_harness import newsdesk
from tests.data import REPO

pytestmark = pytest.mark.both_stores


@pytest.fixture
def db(store_target, tmp_path, sample_corpus):
    result = newsdesk("ingest", str(sample_corpus), "--db", store_target, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return store_target


def test_ingest_json_summary_has_the_promised_fields(store_target, tmp_path, sample_corpus):
    (sample_corpus / "broken.txt").write_bytes(b"")
    result = newsdesk("ingest", str(sample_corpus), "--db", store_target, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"added", "changed", "unchanged", "removed", "failed", "failures"} <= summary.keys()
    assert summary["added"] >= 6 and summary["failed"] == 1
    assert summary["failures"] == [{"path": "broken.txt", "reason": summary["failures"][0]["reason"]}]


def test_ingest_uses_the_settings_for_folder_and_database(store_target, tmp_path, sample_corpus):
    env = {"NEWSDESK_DB": store_target, "NEWSDESK_CORPUS_DIR": str(sample_corpus)}
    result = newsdesk("ingest", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    listed = newsdesk("headlines", "--json", cwd=tmp_path, env={"NEWSDESK_DB": store_target})
    assert len(json.loads(listed.stdout)) == json.loads(result.stdout)["added"]


def test_ask_json_shape(db, tmp_path):
    result = newsdesk(
        "ask", "when did the SDF encircle Manbij?", "--db", db, "--json", "-k", "2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"question", "took_ms", "no_match", "results", "corrections", "context"}
    assert answer["no_match"] is False and 1 <= len(answer["results"]) <= 2
    assert answer["corrections"] == [] and answer["context"] == []
    top = answer["results"][0]
    assert {"article_id", "title", "published", "url", "passage", "excerpt", "score", "missing"} <= top.keys()
    assert top["title"] == "ISIS Stronghold Fled Civilians Surrounded by US-Backed Forces"
    assert "June 8" in top["excerpt"]


def test_ask_reads_questions_from_stdin_one_json_line_each(db, tmp_path):
    result = newsdesk(
        "ask",
        "--db",
        db,
        "--json",
        cwd=tmp_path,
        stdin="how much did the library repairs cost?\n\nwho discovered the comet?\n",
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["question"] for line in lines] == [
        "how much did the library repairs cost?",
        "who discovered the comet?",
    ]
    assert "3.2 million" in lines[0]["results"][0]["excerpt"]


def test_ask_prints_quote_title_date_and_link(db, tmp_path):
    result = newsdesk("ask", "how big is the rail pay rise?", "--db", db, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Rail Workers Call Off Weekend Strike (2025-05-09)" in result.stdout
    assert "https://news.example.org/briefs/rail-strike" in result.stdout
    assert "4.5%" in result.stdout


def test_headlines_newest_first(db, tmp_path):
    result = newsdesk("headlines", "-n", "3", "--db", db, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    dates = [h["published"] for h in json.loads(result.stdout)]
    assert len(dates) == 3 and dates == sorted(dates, reverse=True)


def test_empty_and_overlong_questions_are_refused_with_the_reason(db, tmp_path):
    empty = newsdesk("ask", "   ", "--db", db, cwd=tmp_path)
    assert empty.returncode == 2 and "empty" in empty.stderr
    long = newsdesk("ask", "word " * 400, "--db", db, cwd=tmp_path)
    assert long.returncode == 2 and "limit is 500" in long.stderr


@pytest.mark.parametrize("args", [["ask", "anything"], ["headlines"]])
def test_missing_database_is_one_line_and_nonzero(tmp_path, args):
    result = newsdesk(*args, "--db", str(tmp_path / "missing.db"), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("newsdesk: no database at")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_database_in_missing_folder_is_one_line(tmp_path, sample_corpus):
    result = newsdesk("ingest", str(sample_corpus), "--db", str(tmp_path / "no/dir/n.db"), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_unreadable_corpus_folder_is_one_line(tmp_path):
    result = newsdesk("ingest", str(tmp_path / "nowhere"), "--db", str(tmp_path / "n.db"), cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "nowhere does not exist" in result.stderr


def test_rebuild_sets_a_damaged_database_aside(tmp_path, sample_corpus):
    db = tmp_path / "n.db"
    db.write_bytes(b"garbage" * 1000)
    (tmp_path / "n.db.index").mkdir()  # its index folder beside it: this was a newsdesk database
    broken = newsdesk("ask", "x", "--db", db, cwd=tmp_path)
    assert broken.returncode == 1 and "--rebuild" in broken.stderr and "Traceback" not in broken.stderr
    rebuilt = newsdesk("ingest", str(sample_corpus), "--db", db, "--rebuild", "--json", cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["added"] >= 6
    assert (tmp_path / "n.db.damaged").exists()


def test_run_without_token_answers_in_the_terminal(store_target, tmp_path, sample_corpus):
    env = {"NEWSDESK_DB": store_target, "NEWSDESK_CORPUS_DIR": str(sample_corpus)}
    result = newsdesk("run", cwd=tmp_path, env=env, stdin="who discovered the comet?\n")
    assert result.returncode == 0, result.stderr
    assert "DISCORD_TOKEN is not set" in result.stderr
    assert "Amateur Astronomer Spots New Comet" in result.stdout


def test_malformed_setting_names_the_variable_and_exits_2(tmp_path):
    result = newsdesk("run", cwd=tmp_path, env={"NEWSDESK_RESULTS": "lots"})
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "newsdesk: NEWSDESK_RESULTS must be a whole number from 1 to 10; got 'lots'"
    )


def test_python_dash_m_bot_starts_like_newsdesk_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "NEWSDESK_COOLDOWN": "-1"},
        timeout=60,
    )
    assert result.returncode == 2 and "NEWSDESK_COOLDOWN" in result.stderr


def test_ask_context_searches_a_follow_up_with_the_earlier_question(db, tmp_path):
    result = newsdesk(
        "ask",
        "what share of civilians managed to escape?",
        "--context",
        "the SDF offensive to take Manbij",
        "--db",
        db,
        "--json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == "what share of civilians managed to escape?"
    assert answer["context"] == ["the SDF offensive to take Manbij"]
    assert "80 percent" in answer["results"][0]["excerpt"]


def test_ask_reads_json_objects_with_context_and_plain_lines_from_stdin(db, tmp_path):
    lines = [
        json.dumps(
            {
                "question": "what share of civilians managed to escape?",
                "context": ["the SDF offensive to take Manbij"],
            }
        ),
        "how much did the riverside libary repairs cost?",
        "{not json, so a plain question",
    ]
    result = newsdesk("ask", "--db", db, "--json", cwd=tmp_path, stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["question"] for a in answers] == [
        "what share of civilians managed to escape?",
        "how much did the riverside libary repairs cost?",
        "{not json, so a plain question",
    ]
    assert answers[0]["context"] == ["the SDF offensive to take Manbij"]
    assert "80 percent" in answers[0]["results"][0]["excerpt"]
    assert answers[1]["corrections"] == [{"from": "libary", "to": "library"}]
    assert answers[2]["context"] == []


def test_ask_text_output_shows_the_correction_and_missing_words(db, tmp_path):
    result = newsdesk(
        "ask", "how much did the riverside libary repairs cost in qatar", "--db", db, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Showing results for library (not libary)" in result.stdout
    assert "Missing: qatar" in result.stdout


def test_migrate_applies_the_schema_once_and_says_so(store_target, tmp_path):
    # PostgreSQL has one more: 003_index_snapshots, the index snapshots stored for the other machines.
    names = [m.name for m in migrations("postgres" if is_database_url(store_target) else "sqlite")]
    assert names[:2] == ["001_initial", "002_server_settings"]
    first = newsdesk("migrate", "--db", store_target, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"to schema version {len(names)}: applied {', '.join(names)}" in first.stdout
    again = newsdesk("migrate", "--db", store_target, cwd=tmp_path)
    assert again.returncode == 0
    assert f"is up to date (schema version {len(names)}); nothing to apply" in again.stdout


def test_the_index_of_a_postgres_database_goes_to_the_index_cache(pg_url, tmp_path, sample_corpus):
    env = {"NEWSDESK_INDEX_CACHE": str(tmp_path / "cache")}
    result = newsdesk("ingest", str(sample_corpus), "--db", pg_url, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "cache").iterdir()
    assert folder.name.startswith(pg_url.rsplit("/", 1)[1] + "-") and (folder / "v1").is_dir()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://bot@db.example.org:port/news", "--db: the database URL is malformed"),
        ("postgresql://bot@db.example.org/a/b", "is not one database name"),
    ],
)
def test_a_malformed_database_url_is_a_bad_command_line(tmp_path, url, said):
    result = newsdesk("ask", "anything", "--db", url, cwd=tmp_path)
    assert result.returncode == 2 and said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_malformed_database_url_setting_names_the_variable(tmp_path):
    result = newsdesk("headlines", cwd=tmp_path, env={"NEWSDESK_DB": "postgres://bot@host:99999/news"})
    assert result.returncode == 2 and result.stderr.startswith(
        "newsdesk: NEWSDESK_DB: the database URL is malformed"
    )


@pytest.mark.parametrize("args", [["ask", "anything"], ["headlines"], ["ingest"], ["migrate"]])
def test_an_unreachable_postgres_server_is_one_line_without_the_password(tmp_path, args):
    result = newsdesk(*args, "--db", "postgresql://bot:s3cret@127.0.0.1:1/news", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(
        "newsdesk: cannot reach the PostgreSQL database postgresql://bot@127.0.0.1:1/news"
    )
    assert "s3cret" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
