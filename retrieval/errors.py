"""The errors newsdesk reports to people. Each carries a message fit to show as it is.

    NewsdeskError            what the user is told, in one line, without a traceback
    ├── CorpusError          the corpus folder is missing or unreadable
    ├── StoreError           the database or the search index cannot be opened, read or written
    │   ├── NotNewsdeskDatabase   the file belongs to something else; it is never written or moved
    │   └── DamagedDatabase       a newsdesk database that can no longer be read; --rebuild sets it aside
    ├── QuestionError        the question cannot be searched
    ├── ReloadInProgress     a reload was asked for while another runs
    │   └── IngestRunning         another process is ingesting into the same database
    ├── EmptyArchive         the archive holds no articles yet
    └── bot.config.ConfigError   a setting is missing or malformed

The CLI prints them as ``newsdesk: <message>``, the bot as a short private reply, the web pages as a 503 page.
Any other exception is a bug: it is logged with its traceback and the user gets a short apology.
"""


class NewsdeskError(Exception):
    """Base class: ``str(error)`` is a short sentence for the user, without a traceback."""


class CorpusError(NewsdeskError):
    """The corpus folder is missing, not a folder, or unreadable."""


class StoreError(NewsdeskError):
    """The database cannot be opened, read or written (missing folder, read-only, locked, corrupt, full)."""


class QuestionError(NewsdeskError):
    """The question is empty, too long, or has nothing to search for."""


class ReloadInProgress(NewsdeskError):
    """A reload was asked for while another one is running."""


class NotNewsdeskDatabase(StoreError):
    """The database file belongs to something else (not SQLite, or another program's tables); newsdesk
    leaves it as it is and never offers to rebuild it."""


class DamagedDatabase(StoreError):
    """A newsdesk database that can no longer be read; ``newsdesk ingest --rebuild`` sets it aside."""


class IngestRunning(ReloadInProgress):
    """Another process is ingesting into the same database."""


class EmptyArchive(NewsdeskError):
    """The archive holds no articles yet, so there is nothing to search."""
