"""The ``newsdesk`` command: a thin layer over ``retrieval.NewsService``.

Exit status: 0 on success, 1 when the work failed (unreadable folder, database error), 2 for a bad
command line or setting. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import orjson

from retrieval import (
    Answer,
    EmptyArchive,
    NewsdeskError,
    NewsService,
    QuestionError,
    is_database_url,
    migrate_database,
    set_aside_damaged_database,
)

from .config import ConfigError, Settings, database_setting, load_settings
from .logs import setup_logging
from .memory import freeze_start_up_objects
from .wiring import open_service

EXIT_FAILED = 1
EXIT_USAGE = 2


def _bold_spans(text: str, spans: list[tuple[int, int]], on: str, off: str) -> str:
    out, last = [], 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(on + text[start:end] + off)
        last = end
    out.append(text[last:])
    return "".join(out)


def _open_service(
    settings: Settings, db: str | None, corpus: str | None = None, *, must_exist: bool = False
) -> NewsService:
    db_path = database_setting("--db", db) if db else settings.db
    if must_exist and not is_database_url(db_path) and not Path(db_path).exists():
        raise NewsdeskError(f"no database at {db_path}; run `newsdesk ingest` first (or pass --db FILE)")
    # reading commands never write into a file that is not a newsdesk database
    return open_service(settings, db=db_path, corpus_dir=corpus, create=not must_exist)


def _one_line(text: str) -> str:
    """``text`` with control characters escaped, so that a file name cannot start a line of its own."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _progress_bar(enabled: bool):
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", desc="ingest", leave=False, file=sys.stderr)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update, bar.close


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    corpus = args.path
    if args.rebuild:
        aside = set_aside_damaged_database(database_setting("--db", args.db) if args.db else settings.db)
        if aside is not None:
            print(f"moved the damaged database aside to {aside}", file=sys.stderr)
    service = _open_service(settings, args.db, corpus)
    progress, close_bar = _progress_bar(sys.stderr.isatty() and not args.json)
    try:
        summary = service.reload(progress=progress, rebuild=args.rebuild, trigger="cli")
    finally:
        close_bar()
        service.close()
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False))
        return 0
    print(
        f"ingested {service.corpus_dir}: {summary.line()} ({summary.seconds:.1f} s, "
        f"corpus version {summary.corpus_version})"
    )
    for failure in summary.failures:
        print(f"  failed: {_one_line(failure.path)}: {_one_line(failure.reason)}")
    return 0


def _print_answer(answer: Answer, *, color: bool) -> None:
    on, off = ("\033[1m", "\033[0m") if color else ("", "")
    print(f"Q: {answer.question}")
    if answer.context:
        print(f"  (following up on: {answer.context[-1]})")
    if answer.corrections:
        print("  Showing results for " + ", ".join(f"{to} (not {typed})" for typed, to in answer.corrections))
    if answer.no_match:
        print("  No passage in the corpus answers that well. Try other words, a name, a place or a date.")
        if answer.results and answer.results[0].missing:
            print(f"  The closest articles never mention {', '.join(answer.results[0].missing)}.")
        return
    for n, result in enumerate(answer.results, 1):
        date = (result.published or "undated")[:10]
        print(f"{n}. {result.title} ({date})")
        flat = result.excerpt.text.replace("\n", " ")  # same length, so the spans still fit
        print(f"   \u201c{_bold_spans(flat, result.excerpt.spans, on, off)}\u201d")
        if result.missing:
            print(f"   Missing: {', '.join(result.missing)}")
        print(f"   {result.url or 'source: ' + result.article_id}")
    print(f"  ({answer.took_ms:.1f} ms)")


def _json_line(data: object) -> str:
    """``data`` as one line of JSON, by orjson (several times faster, and ``ask`` writes a line per question);
    by the standard library for what orjson refuses (text with unpaired surrogates from undecodable input)."""
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        return json.dumps(data, ensure_ascii=False)


def _stdin_question(line: str) -> tuple[str, list[str]]:
    """A line of standard input: a plain question, or ``{"question": ..., "context": [...]}``."""
    stripped = line.strip()
    if stripped.startswith("{"):
        try:
            item = json.loads(stripped)
        except json.JSONDecodeError:
            return line, []
        if isinstance(item, dict) and isinstance(item.get("question"), str):
            context = item.get("context") or []
            if isinstance(context, str):
                context = [context]
            return item["question"], [c for c in context if isinstance(c, str)]
    return line, []


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    service = _open_service(settings, args.db, must_exist=True)
    try:
        if args.question is not None:
            questions = iter([(args.question, list(args.context))])
        else:
            freeze_start_up_objects()  # many questions: worth the one collection it starts with
            questions = (_stdin_question(line.rstrip("\n")) for line in sys.stdin if line.strip())
        status = 0
        for question, context in questions:
            try:
                answer = service.search(question, k=args.k, context=context or args.context)
            except QuestionError as exc:
                if args.json:
                    print(_json_line({"question": question[:200], "error": str(exc)}))
                else:
                    print(f"newsdesk: {exc}", file=sys.stderr)
                status = EXIT_USAGE if args.question is not None else status
                continue
            if args.json:
                print(_json_line(answer.to_json()), flush=True)
            else:
                _print_answer(answer, color=sys.stdout.isatty())
        return status
    finally:
        service.close()


def cmd_headlines(args: argparse.Namespace, settings: Settings) -> int:
    service = _open_service(settings, args.db, must_exist=True)
    try:
        headlines = service.headlines(args.n)
    finally:
        service.close()
    if args.json:
        print(json.dumps([h.to_json() for h in headlines], ensure_ascii=False))
        return 0
    for h in headlines:
        print(f"{(h.published or 'undated')[:10]}  {_one_line(h.title)}  {_one_line(h.url or h.article_id)}")
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.token:
        return _run_terminal(args, settings)
    from .main import run_bot

    return run_bot(settings)


def _run_terminal(args: argparse.Namespace, settings: Settings) -> int:
    """Without a Discord token: the same answers, in the terminal."""
    service = _open_service(settings, args.db)
    try:
        print(
            "newsdesk: DISCORD_TOKEN is not set, so answering here in the terminal "
            "(put the token in .env to run the Discord bot).",
            file=sys.stderr,
        )
        first = service.ensure_corpus()
        if first is not None:
            print(f"ingested {service.corpus_dir}: {first.line()}", file=sys.stderr)
        stats = service.stats()
        print(
            f"{stats.articles} articles, {stats.passages} passages. Ask a question "
            "(an empty line or Ctrl-D ends).",
            file=sys.stderr,
        )
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                try:
                    question = input("? ")
                except EOFError:
                    break
            else:
                question = sys.stdin.readline()
                if not question:
                    break
            if not question.strip():
                if interactive:
                    break
                continue
            try:
                _print_answer(service.search(question, k=settings.results), color=sys.stdout.isatty())
            except (QuestionError, EmptyArchive) as exc:
                print(f"newsdesk: {exc}", file=sys.stderr)
        return 0
    finally:
        service.close()


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    report = migrate_database(database_setting("--db", args.db) if args.db else settings.db)
    if report.applied:
        print(
            f"migrated {report.target} to schema version {report.version}: applied {', '.join(report.applied)}"
        )
    else:
        print(f"{report.target} is up to date (schema version {report.version}); nothing to apply")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .web import serve_forever

    return serve_forever(settings, db=args.db, host=args.host, port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsdesk", description="Answer questions from a news archive.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = (
        "the database: an SQLite file or a postgresql:// URL (default: NEWSDESK_DB, else data/newsdesk.db)"
    )

    p = sub.add_parser("ingest", help="read the corpus folder into the database")
    p.add_argument(
        "path", nargs="?", help="the corpus folder (default: NEWSDESK_CORPUS_DIR, else data/articles)"
    )
    p.add_argument("--db", help=db_help)
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="re-read every file and rebuild the database (a damaged database file is moved aside)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", help="answer a question (or one per line from standard input)")
    p.add_argument(
        "question", nargs="?", help="the question; without it, questions are read from standard input"
    )
    p.add_argument("--db", help=db_help)
    p.add_argument(
        "-k", type=int, default=3, choices=range(1, 51), metavar="N", help="results per question (1-50)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per question")
    p.add_argument(
        "--context",
        action="append",
        default=[],
        metavar="QUESTION",
        help="an earlier question this one follows up on (repeat for several, oldest first)",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("headlines", help="list the newest articles")
    p.add_argument("-n", type=int, default=10, choices=range(1, 1001), metavar="N", help="how many (1-1000)")
    p.add_argument("--db", help=db_help)
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_headlines)

    p = sub.add_parser("run", help="run the Discord bot (without DISCORD_TOKEN: answer in the terminal)")
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "migrate", help="apply the database's pending schema migrations (creating a new schema)"
    )
    p.add_argument("--db", help=db_help)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="serve the article pages and search page alone")
    p.add_argument("--db", help=db_help)
    p.add_argument("--host", help="address to bind (default: NEWSDESK_WEB_HOST, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (default: NEWSDESK_WEB_PORT, else 8080)")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # Commands print their own results; only warnings go to the log, unless the bot runs.
    setup_logging(
        settings.log_level if args.command == "run" else "WARNING",
        secrets=[settings.token] if settings.token else [],
    )
    try:
        if getattr(args, "db", None):
            database_setting("--db", args.db)  # a malformed URL is a bad command line
        if args.command == "run" and args.db:
            settings = _with_db(settings, args.db)
    except ConfigError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args, settings)
    except NewsdeskError as exc:
        print(f"newsdesk: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _with_db(settings: Settings, db: str) -> Settings:
    from dataclasses import replace

    return replace(settings, db=database_setting("--db", db))


if __name__ == "__main__":
    sys.exit(main())
