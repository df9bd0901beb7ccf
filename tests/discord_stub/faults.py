"""Scripted REST faults: rate limits (HTTP 429) and error answers for matching requests."""

from __future__ import annotations

import hashlib
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultRule:
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in (method, "*") and self.pattern.search(path) is not None


class Faults:
    """Rules consulted before every REST request; each answers its next ``times`` matches."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def take(self, method: str, path: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        for rule in self.rules:
            if rule.matches(method, path):
                rule.times -= 1
                rule.hits += 1
                headers = dict(rule.headers)
                if rule.retry_after is not None:
                    headers.update(rate_limit_headers(rule))
                return rule.status, rule.body, headers
        return None

    def rate_limit(
        self, method: str, path_regex: str, *, times: int, retry_after: float, global_: bool
    ) -> FaultRule:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
        rule = FaultRule(method.upper(), re.compile(path_regex), times, 429, body, retry_after=retry_after)
        self.rules.append(rule)
        return rule

    def fail(
        self, method: str, path_regex: str, *, status: int, code: int, message: str, times: int
    ) -> FaultRule:
        rule = FaultRule(
            method.upper(), re.compile(path_regex), times, status, {"message": message, "code": code}
        )
        self.rules.append(rule)
        return rule


def rate_limit_headers(rule: FaultRule) -> dict[str, str]:
    """The headers Discord sends with a 429; discord.py requires ``Via`` to trust the JSON body."""
    retry_after = rule.retry_after or 0.0
    bucket = hashlib.sha1(f"{rule.method} {rule.pattern.pattern}".encode()).hexdigest()[:16]
    headers = {
        "Via": "1.1 google",
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Scope": "global" if rule.body.get("global") else "user",
    }
    if rule.body.get("global"):
        headers["X-RateLimit-Global"] = "true"
    return headers
