"""One error hierarchy for the whole library.

Errors caused by what a peer sent (RemoteError) are kept apart from errors caused by
the caller's own use of the API (LocalError), as h11 and pyca do. Every error carries
a short reason; validation errors also carry the ID of the check that failed
(docs/VALIDATION.md lists them).
"""

from __future__ import annotations


class MLSError(Exception):
    """Base of every error this library raises on purpose."""


class RemoteError(MLSError):
    """Something received from the network is malformed, invalid or unauthentic."""


class LocalError(MLSError):
    """The caller used the API in a way it does not allow."""


class DecodeError(RemoteError):
    """Bytes do not parse as the TLS presentation language structure expected."""


class ValidationError(RemoteError):
    """A MUST of the RFC or a draft is violated. `check_id` names the check."""

    def __init__(self, check_id: str, reason: str) -> None:
        super().__init__(f"[{check_id}] {reason}")
        self.check_id = check_id
        self.reason = reason


class CryptoError(RemoteError):
    """Decryption, signature or tag verification failed, or a key is invalid."""


class UnsupportedError(RemoteError):
    """A code point (ciphersuite, credential type, ...) this library does not support."""


class StateError(LocalError):
    """The operation is not allowed in the current state (wrong API use)."""


class ParameterError(LocalError):
    """An argument the caller passed is out of range or of the wrong shape."""


class LibraryError(MLSError):
    """An internal invariant failed: a bug in this library."""
