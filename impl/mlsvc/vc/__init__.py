"""Virtual clients (draft-ietf-mls-virtual-clients-00) as DRAFT-00-PROFILE reads them.

Modules here: `ff1` (the small-space PRP, §5.7), `reuse_guard` (§5.6, §5.8),
`generation_id` (§5.9), `codepoints` (their constants, with profile decision IDs),
`profiles` (the later text's versions of the epoch secrets, the reuse guard's key and
the generation ID's context, selected by `Profile`; draft-00 by default).
Import from the modules; this package re-exports nothing, so importing one module does
not pull in the others.
"""
