"""WebVTT pieces shared by the caption and chapter tracks."""

from __future__ import annotations


def timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (negative times clamp to zero)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"
