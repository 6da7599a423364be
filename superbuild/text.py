"""Text from a commit, made safe to print."""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: Bytes of a path that are not UTF-8, as Python holds them (``surrogateescape``).
_SURROGATE = re.compile("[\udc80-\udcff]")


def safe_text(text: str) -> str:
    """``text`` with control characters (ESC, CR, other C0/C1, DEL) shown as ``\\xNN``
    escapes: a name or path from a commit cannot move the cursor or recolour the terminal.
    Newlines and tabs are kept.  A byte of a path that is not UTF-8 is shown as
    ``\\xNN`` too (printing it as it is would fail on a UTF-8 stream)."""
    text = _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
