"""newsdesk retrieval: parse news articles, store them in SQLite, rank passages with BM25.

Nothing in this package knows about Discord; the CLI, the bot and the web pages all use it.
"""
