"""The token is masked in every log record, whichever logger writes it and however it gets there."""

from __future__ import annotations

import io
import logging

from bot.logs import setup_logging

TOKEN = "NEWSDESK-SECRET-TOKEN-0123456789abcdefXYZ"


def test_token_in_messages_arguments_and_tracebacks_is_masked():
    handler = setup_logging("DEBUG", secrets=[TOKEN])
    stream = io.StringIO()
    handler.setStream(stream)
    log = logging.getLogger("discord.http")
    log.info("sending with Authorization: Bot %s", TOKEN)
    log.warning(f"direct {TOKEN}")
    try:
        raise RuntimeError(f"request failed for token {TOKEN}")
    except RuntimeError:
        log.exception("failure")
    output = stream.getvalue()
    assert TOKEN not in output
    assert output.count("[token hidden]") == 3
    assert "RuntimeError: request failed for token [token hidden]" in output
    logging.getLogger().handlers.clear()
