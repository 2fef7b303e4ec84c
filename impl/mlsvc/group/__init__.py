"""The MLS group engine (RFC 9420 §10-§13): key packages, proposals, commits,
Welcome and external joins, application messages; sans-IO.

Public entry points: `Group` (group.py), `create_key_package` (key_package.py),
`GroupConfig` and `Identity` (config.py), the events of `process` (events.py).
"""
