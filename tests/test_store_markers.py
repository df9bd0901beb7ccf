"""The suite's own rule: a test that opens a database runs on both back ends or says why it does not."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.data import REPO

CONFTEST = "from tests.conftest import pytest_collection_modifyitems, pytest_generate_tests, store_target\n"


def collect(tmp_path, **modules: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_a_test_on_a_database_without_a_store_marker_stops_the_run(tmp_path):
    result = collect(tmp_path, test_x="def test_reads(store_target):\n    assert store_target\n")
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "marked neither both_stores nor sqlite_only" in result.stderr and "test_reads" in result.stderr


def test_marked_tests_and_tests_without_a_database_are_collected(tmp_path):
    result = collect(
        tmp_path,
        test_both="import pytest\npytestmark = pytest.mark.both_stores\ndef test_reads(store_target): pass\n",
        test_sqlite="import pytest\n@pytest.mark.sqlite_only\ndef test_file(store_target): pass\n",
        test_pure="def test_pure(): pass\n",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_both.py::test_reads[sqlite]" in result.stdout
    assert "test_both.py::test_reads[postgres]" in result.stdout
    assert "4 tests collected" in result.stdout
