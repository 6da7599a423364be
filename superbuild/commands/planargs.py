"""From the command line to a :class:`~superbuild.planning.PlanRequest`, and back to the
terminal for the plan's notes: shared by ``changed``, ``plan`` and ``build``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from superbuild.commands import warn
from superbuild.planning import Mode, Note, PlanRequest, check

#: The options that choose a mode, strongest first (the first given is the mode).
_MODE_OPTIONS: tuple[tuple[str, str, Mode], ...] = (
    ("retry_failed", "--retry-failed", "retry-failed"),
    ("since_last_success", "--since-last-success", "since-last-success"),
    ("all", "--all", "all"),
)


def request_from_args(args: argparse.Namespace) -> PlanRequest:
    """The plan request of a verb's arguments; refuses options that do not combine (exit 2)."""
    given = [(option, mode) for dest, option, mode in _MODE_OPTIONS if getattr(args, dest, False)]
    request = PlanRequest(
        mode=given[0][1] if given else "range",
        base=getattr(args, "base", None),
        head=getattr(args, "head", "HEAD"),
        select=tuple(getattr(args, "packages_select", ())),
        up_to=tuple(getattr(args, "packages_up_to", ())),
        above=tuple(getattr(args, "packages_above", ())),
        skip=tuple(getattr(args, "packages_skip", ())),
        manifests_from=getattr(args, "manifests_from", None),
        targets=tuple(getattr(args, "target", None) or ()),
    )
    check(request, also=[option for option, _ in given[1:]])
    return request


def print_notes(notes: Iterable[Note]) -> None:
    """Warnings as ``superbuild: warning: ...``, other notes as they are; all on stderr."""
    for note in notes:
        if note.warning:
            warn(note.text)
        else:
            print(note.text, file=sys.stderr)
