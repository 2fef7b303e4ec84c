"""mlsvc: MLS (RFC 9420) with the virtual clients of draft-ietf-mls-virtual-clients-00.

Import direction (never back; tests/unit/test_layering.py checks it):
errors, codec, types -> crypto -> schedule, tree.math, tree.secret_tree -> messages
-> tree (ratchet tree, TreeKEM: its nodes are wire structs) -> group -> ext -> vc,
with conformance and cli on top. RFC 9420 code never imports draft code (ext, vc);
only mlsvc.crypto imports `cryptography`.
"""

__version__ = "0.1.0"
