"""The errors newsdesk reports to people. Each carries a message fit to show as it is.

    NewsdeskError            what the user is told, in one line, without a traceback
    ├── CorpusError          the corpus folder is missing or unreadable
    ├── StoreError           the database or the search index cannot be opened, read or written
    ├── QuestionError        the question cannot be searched
    ├── ReloadInProgress     a reload was asked for while another runs
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
