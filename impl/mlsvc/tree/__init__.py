"""Trees of RFC 9420: array tree math (Appendix C), the secret tree (§9), and (with the
group engine) the ratchet tree and TreeKEM (§4, §7)."""
