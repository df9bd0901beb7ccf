"""Discord's limits on message bodies, answered with the same 400 errors Discord gives."""

from __future__ import annotations

from typing import Any

from .messages import ApiError

CONTENT_LIMIT = 2000
EMBED_LIMITS = {"title": 256, "description": 4096}
FIELD_LIMITS = {"name": 256, "value": 1024}


def invalid(path: str, reason: str) -> ApiError:
    return ApiError(400, 50035, f"Invalid Form Body: {path}: {reason}")


def embed_text_length(embed: dict[str, Any]) -> int:
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    total += len((embed.get("footer") or {}).get("text") or "") + len(
        (embed.get("author") or {}).get("name") or ""
    )
    for f in embed.get("fields") or []:
        total += len(f.get("name") or "") + len(f.get("value") or "")
    return total


def validate_message_body(body: dict[str, Any], *, has_files: bool, creating: bool) -> None:
    content = body.get("content")
    embeds = body.get("embeds") or []
    if content is not None and len(content) > CONTENT_LIMIT:
        raise invalid("content", f"Must be {CONTENT_LIMIT} or fewer in length.")
    if len(embeds) > 10:
        raise invalid("embeds", "Must be 10 or fewer in length.")
    for i, embed in enumerate(embeds):
        for key, limit in EMBED_LIMITS.items():
            if len(embed.get(key) or "") > limit:
                raise invalid(f"embeds.{i}.{key}", f"Must be {limit} or fewer in length.")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise invalid(f"embeds.{i}.fields", "Must be 25 or fewer in length.")
        for j, f in enumerate(fields):
            for key, limit in FIELD_LIMITS.items():
                if not f.get(key):
                    raise invalid(f"embeds.{i}.fields.{j}.{key}", "This field is required")
                if len(f[key]) > limit:
                    raise invalid(f"embeds.{i}.fields.{j}.{key}", f"Must be {limit} or fewer in length.")
    if sum(embed_text_length(e) for e in embeds) > 6000:
        raise invalid("embeds", "Embed size exceeds maximum size of 6000")
    if len(body.get("components") or []) > 40:
        raise invalid("components", "Must be 40 or fewer in length.")
    if creating and not (
        content
        or embeds
        or body.get("components")
        or has_files
        or body.get("sticker_ids")
        or body.get("poll")
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")
