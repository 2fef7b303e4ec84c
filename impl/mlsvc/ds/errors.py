"""The delivery service's errors, inside the library's one hierarchy (mlsvc.errors).

Two kinds, kept apart as the rest of the library does (h11 Local/Remote):

- `DeliveryError` (a StateError, so a LocalError): the caller used the DS API wrongly:
  an unknown client, group or virtual client; a registration twice; a fetch from an
  empty directory; a GroupInfo asked for an epoch nobody published.
- `UnacceptableMessage` (a RemoteError): bytes a client handed the DS parse, but are
  not something this operation takes: a Welcome where a PublicMessage belongs, a
  Welcome whose KeyPackageRefs the directory never handed out, a GroupInfo for another
  group. Bytes that do not parse at all raise the codec's `DecodeError`.

A submission the DS refuses by its ordering rules (stale epoch, commit conflict,
generation-ID collision, ...) is no error: `submit` returns `Submitted(accepted=False,
reason=...)`, as a real server answers a client.

Every error carries `code`, a short stable string that tests and callers compare.
"""

from __future__ import annotations

from mlsvc.errors import RemoteError, StateError


class DeliveryError(StateError):
    """Wrong use of the delivery service API. `code` names the rule."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"[{code}] {detail}")
        self.code = code
        self.detail = detail


class UnacceptableMessage(RemoteError):
    """A well-formed message this DS operation does not take. `code` names why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"[{code}] {detail}")
        self.code = code
        self.detail = detail
