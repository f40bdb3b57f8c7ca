"""Exceptions raised by vam. Every message says what was wrong and what to do about it."""

from __future__ import annotations


class VamError(Exception):
    """Base class of every error vam raises on purpose."""


class PermanentFailure(VamError):
    """A failure that retrying the same step cannot fix (bad input, bad metadata, failed gate)."""


class RejectedInput(PermanentFailure):
    """The source is not a usable video. ``code`` is a short machine-readable reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class UnknownProfile(PermanentFailure):
    """An encoding profile name that does not exist."""


class ProfileError(PermanentFailure):
    """An encoding profile file that is malformed."""


class ToolError(VamError):
    """An external tool (ffmpeg, ffprobe) exited non-zero; the message carries its stderr tail."""

    def __init__(self, argv: list[str], returncode: int, stderr_tail: str) -> None:
        super().__init__(f"{argv[0]} exited with {returncode}: {stderr_tail.strip()[-2000:]}")
        self.argv = argv
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class QualityGateFailed(PermanentFailure):
    """A rendition failed the quality gate; the message names the rendition and metric."""


class StorageError(VamError):
    """An object store operation failed or an object is missing."""


class ChecksumMismatch(StorageError):
    """A copied object does not match its source's checksum."""


class CatalogError(VamError):
    """The catalog database cannot be reached or is inconsistent."""


class PolicyError(PermanentFailure):
    """A lifecycle policy or price table that is malformed; the message names the key."""


class LegalHoldError(PermanentFailure):
    """An operation that would move or delete an asset under legal hold."""
