"""newsdesk's own web pages: the article a link points at, a search page, and a health check.

Read-only: ``GET /``, ``GET /articles/<id>`` (``#p<n>`` is a passage), ``GET /healthz``.
"""

from .app import create_app
from .server import serve_forever, start_web

__all__ = ["create_app", "serve_forever", "start_web"]
