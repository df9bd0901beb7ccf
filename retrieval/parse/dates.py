"""Dates in the shapes news pages and feeds use, turned into ISO 8601 without a zone.

Only whole strings in a known shape are dates (``parse_date("June 21, 2016")``); an ordinary
sentence that merely contains a date is not, so a body line is never mistaken for a date line.
A time zone, when given, is dropped: the wall-clock time the source printed is kept.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

__all__ = ["epoch_to_iso", "parse_date", "parse_date_value"]

_MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
    "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
    "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
    "dec": 12, "december": 12,
}  # fmt: skip

_LABEL = r"(?:(?:published|posted|updated|last\s+updated|date|dated)(?:\s+on)?\s*[:\-]?\s*)?"
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?:day|sday|nesday|rsday|urday)?\.?,?\s+)?"
_MON = r"(?P<mon>[a-z]{3,9})\.?"
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<Y>\d{4})"
_CLOCK = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d{1,9})?)?(?:\s*(?P<ampm>[ap])\.?m\.?)?"
_TIME = r"(?:(?:T|\s*,?\s+(?:at\s+)?)" + _CLOCK + r")?"
_ZONE = (
    r"(?:\s*(?:z|[+-]\d{2}(?::?\d{2})?|\(?(?:gmt|utc|ut|[ecmp][sd]t|bst|cet|cest|ist)\)?"
    r"(?:\s*[+-]\d{1,2}(?::?\d{2})?)?))?"
)
_END = _ZONE + r"\.?"

_PATTERNS = [
    # 2016-06-21, 2016-06-21T12:02:16.000Z, 2016/06/21 12:02
    re.compile(
        _LABEL + r"(?P<Y>\d{4})(?P<sep>[-/.])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})" + _TIME + _END, re.I
    ),
    # Tue Jun 21, 2016 12:02:16 / June 21, 2016 / Jun. 21 2016
    re.compile(_LABEL + _WEEKDAY + _MON + r"\s+" + _DAY + r",?\s+" + _YEAR + _TIME + _END, re.I),
    # Tue, 21 Jun 2016 12:02:16 GMT / 21 June 2016 / 21-Jun-2016 / 21st of June, 2016
    re.compile(
        _LABEL + _WEEKDAY + _DAY + r"(?:\s+of)?[\s\-]+" + _MON + r",?[\s\-]+" + _YEAR + _TIME + _END, re.I
    ),
    # Tue Jun 21 12:02:16 2016 (C asctime)
    re.compile(_LABEL + _WEEKDAY + _MON + r"\s+" + _DAY + r"\s+" + _CLOCK + _ZONE + r"\s+" + _YEAR, re.I),
    # 21/06/2016, 21.06.2016 12:02 (day first unless that cannot be)
    re.compile(_LABEL + r"(?P<a>\d{1,2})(?P<sep>[/.\-])(?P<b>\d{1,2})(?P=sep)" + _YEAR + _TIME + _END, re.I),
]

_MAX_DATE_CHARS = 80


def parse_date(text: str) -> str | None:
    """``"Tue Jun 21, 2016 12:02:16"`` -> ``"2016-06-21T12:02:16"``; ``"21 June 2016"`` -> ``"2016-06-21"``.

    Returns None unless the whole (stripped) string is a date in one of the known shapes. Numeric
    day/month dates are read day first (``21/06/2016``) unless only month first is possible.
    """
    s = text.strip()
    if not s or len(s) > _MAX_DATE_CHARS or not any(c.isdigit() for c in s[:40]):
        return None
    for pattern in _PATTERNS:
        m = pattern.fullmatch(s)
        if m is None:
            continue
        groups = m.groupdict()
        year = int(groups["Y"])
        if groups.get("mon"):
            month = _MONTHS.get(groups["mon"].lower())
            if month is None:
                continue
            day = int(groups["d"])
        elif groups.get("a"):
            day, month = int(groups["a"]), int(groups["b"])
            if month > 12 >= day:
                day, month = month, day
        else:
            month, day = int(groups["m"]), int(groups["d"])
        result = _assemble(year, month, day, groups)
        if result is not None:
            return result
    return None


def _assemble(year: int, month: int, day: int, groups: dict[str, str | None]) -> str | None:
    if not 1800 <= year <= 2200:
        return None
    hour_text = groups.get("H")
    try:
        if hour_text is None:
            return datetime(year, month, day).strftime("%Y-%m-%d")
        hour, minute = int(hour_text), int(groups["M"] or 0)
        second = int(groups["S"] or 0)
        ampm = (groups.get("ampm") or "").lower()
        if ampm:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if ampm == "p" else 0)
        return datetime(year, month, day, hour, minute, second).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


_EPOCH_MIN = -2_208_988_800  # 1900-01-01
_EPOCH_MAX = 4_102_444_800  # 2100-01-01


def epoch_to_iso(value: float) -> str | None:
    """Unix time (seconds, or milli/microseconds when the number is that large) -> ISO 8601 in UTC."""
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(seconds):
        return None
    if abs(seconds) >= 1e14:
        seconds /= 1_000_000
    elif abs(seconds) >= 1e11:
        seconds /= 1000
    if not _EPOCH_MIN <= seconds <= _EPOCH_MAX:
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


_DIGITS = re.compile(r"[+-]?\d{9,16}(?:\.\d+)?")


def parse_date_value(value: object) -> str | None:
    """A record's date field: an ISO or common date string, or a Unix epoch (number or digit string)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return epoch_to_iso(value)
    if isinstance(value, str):
        s = value.strip()
        if _DIGITS.fullmatch(s):
            return epoch_to_iso(float(s))
        return parse_date(s)
    if isinstance(value, dict):  # {"$date": ...} (MongoDB export) and the like
        for key in ("$date", "date", "value", "iso"):
            if key in value:
                return parse_date_value(value[key])
    return None
