"""The refinement bridge: the executable model (mlsvc_model) judges the implementation
(mlsvc).

The only code that imports both. `bridge.Bridge` applies each of the model's transitions
to the model's world and the same operation to real emulators, a real delivery service
and real members of higher-level groups; `abstraction` maps the implementation's state
to the model's and prints any difference; `invariants` checks every INV-* of the model
on the implementation's bytes; `machine` drives the bridge with Hypothesis; `cli` is
`mlsvc model refine`. docs/REFINEMENT.md explains the correspondence.
"""
