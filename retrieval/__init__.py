"""newsdesk retrieval: parse news articles, store them in SQLite or PostgreSQL, rank passages with BM25.

Nothing in this package knows about Discord; the CLI, the bot and the web pages all use it, through the
names exported here and only those: ``NewsService`` (the one object they hold), the records it returns, and
the errors it raises. The modules behind them are this package's own business.

Importing this package is cheap: each name loads its module when first used (``retrieval.parse`` alone
does not load the index's compiled kernels).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it
_PUBLIC = {
    "Analyzer": "analyze",
    "Answer": "service",
    "Article": "models",
    "CorpusError": "errors",
    "DEFAULT_MAX_ARTICLE_BYTES": "ingest",
    "DEFAULT_MAX_FILE_BYTES": "parse",
    "DamagedDatabase": "errors",
    "DatabaseStatus": "status",
    "EmptyArchive": "errors",
    "Excerpt": "excerpt",
    "FeedbackSummary": "status",
    "Headline": "service",
    "IngestRun": "status",
    "IngestSummary": "ingest",
    "KEEP_AFTER_LEAVING": "server_settings",
    "LinkPolicy": "links",
    "LinkTemplateError": "links",
    "MAX_QUESTION_CHARS": "service",
    "MigrationReport": "store",
    "NewsService": "service",
    "NewsdeskError": "errors",
    "NotNewsdeskDatabase": "errors",
    "Passage": "models",
    "Progress": "ingest",
    "QuestionError": "errors",
    "RatedAnswer": "status",
    "Refusal": "models",
    "RelatedItem": "models",
    "ReloadInProgress": "errors",
    "ReloadStatus": "status",
    "Result": "service",
    "SearchProcesses": "search_process",
    "SETTING_NAMES": "server_settings",
    "ServerSettings": "server_settings",
    "ServerSettingsTable": "server_settings",
    "ServiceStats": "status",
    "SettingChange": "server_settings",
    "Snapshot": "service",
    "StoreError": "errors",
    "StoredArticle": "store",
    "clean_question": "service",
    "describe_target": "store",
    "is_database_url": "store",
    "migrate_database": "store",
    "parse_database_url": "store",
    "set_aside_damaged_database": "service",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # the same names, for type checkers and editors
    from .analyze import Analyzer
    from .errors import (
        CorpusError,
        DamagedDatabase,
        EmptyArchive,
        NewsdeskError,
        NotNewsdeskDatabase,
        QuestionError,
        ReloadInProgress,
        StoreError,
    )
    from .excerpt import Excerpt
    from .ingest import DEFAULT_MAX_ARTICLE_BYTES, IngestSummary, Progress
    from .links import LinkPolicy, LinkTemplateError
    from .models import Article, Passage, Refusal, RelatedItem
    from .parse import DEFAULT_MAX_FILE_BYTES
    from .search_process import SearchProcesses
    from .server_settings import (
        KEEP_AFTER_LEAVING,
        SETTING_NAMES,
        ServerSettings,
        ServerSettingsTable,
        SettingChange,
    )
    from .service import (
        MAX_QUESTION_CHARS,
        Answer,
        Headline,
        NewsService,
        Result,
        Snapshot,
        clean_question,
        set_aside_damaged_database,
    )
    from .status import DatabaseStatus, FeedbackSummary, IngestRun, RatedAnswer, ReloadStatus, ServiceStats
    from .store import (
        MigrationReport,
        StoredArticle,
        describe_target,
        is_database_url,
        migrate_database,
        parse_database_url,
    )
