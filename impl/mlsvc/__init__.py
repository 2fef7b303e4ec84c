"""mlsvc: MLS (RFC 9420) with the virtual clients of draft-ietf-mls-virtual-clients-00.

Import direction (never back):
codec, types -> crypto -> tree, schedule -> messages -> group -> ext -> vc.
RFC 9420 code never imports draft code (ext, vc).
"""

__version__ = "0.1.0"
