"""rpm's version ordering: which of two (Epoch, Version, Release) is newer.

rpm's own ``labelCompare`` when its Python bindings import (``python3-rpm``, which the
RPM tests need anyway), else :func:`rpmvercmp`, a transcription of rpm's
``rpmvercmp()`` (``rpmio/rpmvercmp.c``, rpm >= 4.15: ``~`` sorts before anything, ``^``
after the version it extends but before anything longer); a test holds the two equal.
"""

from __future__ import annotations

from typing import NamedTuple


class EVR(NamedTuple):
    epoch: int
    version: str
    release: str

    def __str__(self) -> str:
        return (
            f"{self.epoch}:{self.version}-{self.release}"
            if self.epoch
            else (f"{self.version}-{self.release}")
        )


def _alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` (one Version or Release)."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not _alnum(a[i]) and a[i] not in "~^":
            i += 1
        while j < len(b) and not _alnum(b[j]) and b[j] not in "~^":
            j += 1
        # A tilde sorts before everything, even the end of the string.
        ta, tb = i < len(a) and a[i] == "~", j < len(b) and b[j] == "~"
        if ta or tb:
            if not ta:
                return 1
            if not tb:
                return -1
            i, j = i + 1, j + 1
            continue
        # A caret sorts after the end of the string, before anything else.
        ca, cb = i < len(a) and a[i] == "^", j < len(b) and b[j] == "^"
        if ca or cb:
            if i >= len(a):
                return -1
            if j >= len(b):
                return 1
            if not ca:
                return 1
            if not cb:
                return -1
            i, j = i + 1, j + 1
            continue
        if i >= len(a) or j >= len(b):
            break
        start_a, start_b = i, j
        numeric = a[i].isdigit()
        if numeric:
            while i < len(a) and a[i].isascii() and a[i].isdigit():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isdigit():
                j += 1
        else:
            while i < len(a) and a[i].isascii() and a[i].isalpha():
                i += 1
            while j < len(b) and b[j].isascii() and b[j].isalpha():
                j += 1
        one, two = a[start_a:i], b[start_b:j]
        if not two:
            # The segments are of different kinds: a number is newer than letters.
            return 1 if numeric else -1
        if numeric:
            one, two = one.lstrip("0"), two.lstrip("0")
            if len(one) != len(two):
                return 1 if len(one) > len(two) else -1
        if one != two:
            return 1 if one > two else -1
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def _python_compare(a: EVR, b: EVR) -> int:
    if a.epoch != b.epoch:
        return 1 if a.epoch > b.epoch else -1
    return rpmvercmp(a.version, b.version) or rpmvercmp(a.release, b.release)


def compare(a: EVR, b: EVR) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as or newer than ``b`` (rpm's order)."""
    try:
        import rpm
    except ImportError:
        return _python_compare(a, b)
    found: int = rpm.labelCompare(
        (str(a.epoch), a.version, a.release), (str(b.epoch), b.version, b.release)
    )
    return (found > 0) - (found < 0)
