"""Runners for the official RFC 9420 test vectors, one module per vector file.

Each runner module exposes `run(cases: list[dict[str, Any]]) -> FileResult`; the
registry in `registry.py` maps file names to runners. The same runners are used by
`mlsvc vectors` and by the pytest tests in tests/vectors/.
"""
