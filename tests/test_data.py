"""Where the tests' data lives (``tests/data.py``): the shared corpora are optional here and required in CI."""

from __future__ import annotations

import pytest

from tests import data


def test_missing_shared_data_skips_here_but_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(data, "SHARED_CORPORA", tmp_path / "absent")
    missing = tmp_path / "absent" / "bbc.jsonl.gz"
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="needs the large corpora"):
        data.need(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="test data missing"):
        data.need(missing)


def test_the_seed_article_is_in_the_repository():
    assert data.SEED.is_file()
    assert data.SEED.parent == data.SAMPLE_CORPUS


def test_generated_news_is_the_same_for_a_seed_and_varies_between_seeds():
    assert data.generated_news(5, seed=1) == data.generated_news(5, seed=1)
    assert data.generated_news(5, seed=1) != data.generated_news(5, seed=2)
    rows = data.generated_news(50)
    assert len({r["id"] for r in rows}) == 50
    assert all(r["title"] and r["body"] for r in rows)
