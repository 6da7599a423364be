"""Test and demo tooling: real git superprojects built on the fly (see :mod:`.sample`).

Not imported by superbuild itself; may start processes directly.
"""
