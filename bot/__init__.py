"""newsdesk application layer: the Discord bot, the CLI and the article pages."""
