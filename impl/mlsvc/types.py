"""Distinct types per index space (OpenMLS habit): mypy catches a LeafIndex passed
where a NodeIndex is expected. Code points live in the modules that define them."""

from __future__ import annotations

from typing import NewType

LeafIndex = NewType("LeafIndex", int)
"""Index of a leaf among the leaves of a ratchet tree (RFC 9420 §4.1)."""

NodeIndex = NewType("NodeIndex", int)
"""Index of a node in the array representation of a tree (RFC 9420 Appendix C)."""

LeafCount = NewType("LeafCount", int)
"""Number of leaves of a tree (a power of two in a ratchet tree, RFC 9420 §7.8)."""

Epoch = NewType("Epoch", int)
