"""Z3 proof obligations for mlsvc (docs/PROOFS.md).

- `obligation`: the Obligation/Query/Result types and the runner (one solver per
  obligation; `unknown` and timeouts fail; every holds obligation has a sat twin).
- `partition`, `feistel`, `reuse_guard`: draft-ietf-mls-virtual-clients-00 §5.6-5.8.
- `tree_math`: RFC 9420 Appendix C over 32-bit bit-vectors.
- `registry`: all obligations; `cli`: `mlsvc proofs [--json]`.

This package imports only z3 (and, where needed, the model), never `mlsvc` itself;
tests/proofs replays counterexamples and compares encodings with the implementation.
"""
