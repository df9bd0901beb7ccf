"""The retrieval package's public names: what the bot, the CLI and the web pages may use."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import retrieval
from tests.data import REPO


def test_every_public_name_resolves_to_the_module_that_defines_it():
    for name in retrieval.__all__:
        value = getattr(retrieval, name)
        module = f"retrieval.{retrieval._PUBLIC[name]}"
        assert getattr(sys.modules[module], name) is value


def test_the_names_for_type_checkers_are_the_public_names():
    tree = ast.parse(Path(retrieval.__file__).read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    imported = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == retrieval._PUBLIC


def test_an_unknown_name_is_an_attribute_error():
    try:
        retrieval.Store  # noqa: B018  (the store is not public)
    except AttributeError as exc:
        assert "Store" in str(exc)
    else:
        raise AssertionError("retrieval.Store should not be public")


def test_importing_the_parsers_does_not_load_the_index():
    code = "import sys, retrieval.parse; print('retrieval.kernels' in sys.modules, 'numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_bot_imports_retrieval_by_its_public_names_only():
    for path in sorted((REPO / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("retrieval"):
                assert node.module == "retrieval", f"{path.relative_to(REPO)}: from {node.module} import ..."
                assert {a.name for a in node.names} <= set(retrieval.__all__), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("retrieval") for a in node.names), path
