"""A reload in a child process, so that parsing, ingest and the index build never hold the caller's interpreter.

The child opens the same database and corpus folder, runs the ordinary reload (one write transaction; the new
index is built and saved beside the serving one before the commit) and reports progress and the summary as JSON
lines on its standard output. The parent then only loads the new version's memory-mapped index and swaps it in.
A child that fails or dies changes nothing: the transaction rolls back and the parent keeps its snapshot.

    python -m retrieval.reload_process   (one JSON line of arguments on standard input)
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import errors as error_types
from .errors import NewsdeskError, StoreError
from .ingest import IngestSummary
from .models import Refusal

log = logging.getLogger(__name__)

CHILD_NICENESS = 10  # a reload is background work: the bot's answers come first on a busy machine


def summary_from_json(data: dict) -> IngestSummary:
    return IngestSummary(
        added=data["added"],
        changed=data["changed"],
        unchanged=data["unchanged"],
        removed=data["removed"],
        failures=[Refusal(f["path"], f["reason"]) for f in data["failures"]],
        files=data["files"],
        corpus_version=data["corpus_version"],
        seconds=data["seconds"],
    )


def reload_in_child(
    *,
    db_path: Path | str,
    corpus_dir: Path,
    index_root: Path,
    language: str,
    max_article_bytes: int,
    max_file_bytes: int,
    ingest_workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    rebuild: bool = False,
    trigger: str = "cli",
) -> IngestSummary:
    """Run one reload in a child process and return its summary; raise what it raised."""
    request = {
        "db": str(db_path),
        "corpus": str(corpus_dir),
        "index_root": str(index_root),
        "language": language,
        "max_article_bytes": max_article_bytes,
        "max_file_bytes": max_file_bytes,
        "ingest_workers": ingest_workers,
        "rebuild": rebuild,
        "trigger": trigger,
    }
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    # The child's log goes to a file, not a pipe: a pipe nobody reads while waiting for the result could fill up
    # (a warning per refused file) and stall the child.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrieval.reload_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            encoding="utf-8",
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.close()
            outcome: dict | None = None
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if "progress" in message:
                    if progress is not None:
                        progress(*message["progress"])
                else:
                    outcome = message
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        log_file.seek(0)
        errors = log_file.read()
    for line in errors.splitlines()[-20:]:
        log.warning("reload process: %s", line)
    if outcome is not None and "summary" in outcome:
        return summary_from_json(outcome["summary"])
    if outcome is not None and "error" in outcome:
        kind = getattr(error_types, outcome["error"], None)
        if not (isinstance(kind, type) and issubclass(kind, NewsdeskError)):
            kind = StoreError
        raise kind(outcome["message"])
    log.error("the reload process ended with status %s without a result", code)
    raise StoreError(f"the reload process stopped unexpectedly (exit status {code}); nothing was changed")


def main() -> int:
    os.nice(CHILD_NICENESS)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from .service import NewsService

    request = json.loads(sys.stdin.readline())
    service = NewsService(
        request["db"],
        request["corpus"],
        language=request["language"],
        max_article_bytes=request["max_article_bytes"],
        max_file_bytes=request["max_file_bytes"],
        ingest_workers=request["ingest_workers"],
        index_root=request["index_root"],
    )

    def report(message: dict) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    try:
        summary = service.reload(
            progress=lambda done, total: report({"progress": [done, total]}),
            rebuild=request["rebuild"],
            trigger=request["trigger"],
            swap=False,
        )
    except NewsdeskError as exc:
        report({"error": type(exc).__name__, "message": str(exc)})
        return 1
    finally:
        service.close()
    report({"summary": summary.to_json()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
