"""Every obligation of the project, in the order `mlsvc proofs` prints them."""

from __future__ import annotations

from mlsvc_proofs import feistel, partition, reuse_guard, tree_math
from mlsvc_proofs.obligation import EncodingError, Obligation

OBLIGATIONS: tuple[Obligation, ...] = (
    *partition.OBLIGATIONS,
    *feistel.OBLIGATIONS,
    *reuse_guard.OBLIGATIONS,
    *tree_math.OBLIGATIONS,
)

BY_NAME: dict[str, Obligation] = {ob.name: ob for ob in OBLIGATIONS}

if len(BY_NAME) != len(OBLIGATIONS):  # pragma: no cover - a registry bug
    raise EncodingError("duplicate obligation names")
for _ob in OBLIGATIONS:
    if _ob.twin_of is not None and _ob.twin_of not in BY_NAME:  # pragma: no cover
        raise EncodingError(f"{_ob.name} is the twin of an unknown obligation")
