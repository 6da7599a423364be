"""Build keys and verdicts: does a package need a rebuild, and why.

A package build is identified by its **build key**: a sha256 over the submodule commit
the superproject records, the package's effective manifest entry (``Package.digest``,
settings defaults and the target's defaults included), the target's name (none for the
implicit target) and the build keys of the packages it requires in the same target
(computed in topological order over the whole product).  Everything here is keyed by
job id (``pkg``, or ``pkg@el9`` for a named target): one build per (package, target).  A package needs a rebuild exactly when its
key differs from the key of its last successful build: :func:`assess` says so, with a
reason, for ``status`` and ``--since-last-success``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from superbuild.package import job_id
from superbuild.state.store import BuildRecord, BuildState, PackageHistory

if TYPE_CHECKING:
    from superbuild.manifest import Product


@dataclass(frozen=True)
class BuildInputs:
    """What one package build depends on, and the key that sums it up."""

    commit: str  # the submodule commit the superproject records
    digest: str  # Package.digest: the effective manifest entry (target defaults applied)
    deps: Mapping[str, str]  # required package's job id -> its build key
    key: str
    target: str | None = None  # None: the implicit target


def build_inputs(product: Product, links: Mapping[str, str]) -> dict[str, BuildInputs]:
    """The build inputs of every build of ``product`` (``links``: path -> recorded commit),
    by job id (:func:`~superbuild.package.job_id`: ``pkg`` or ``pkg@target``).

    Computed in topological order, so that a package's key covers its dependencies' keys
    (of the same target).  A named target's key also covers its name and its defaults
    (through the digest); the implicit target's keys are those of a product without
    targets.  Cost: one sha256 per build, no git process.
    """
    graph = product.graph
    result: dict[str, BuildInputs] = {}
    for name in graph.order():
        commit = links.get(product.entries[name].path, "")
        for target in product.targets_of(name):
            digest = product.entry_for(name, target).digest
            deps = {
                job_id(req, target): result[job_id(req, target)].key
                for req in graph.requires[name]
                if job_id(req, target) in result
            }
            raw = "\0".join(
                ["superbuild-build-key-1", name, commit, digest]
                + ([] if target is None else [f"target={target}"])
                + [f"{dep}={key}" for dep, key in sorted(deps.items())]
            )
            key = hashlib.sha256(raw.encode()).hexdigest()
            result[job_id(name, target)] = BuildInputs(commit, digest, deps, key, target)
    return result


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """Whether a package needs a rebuild, and why (``reason`` is empty when it does not)."""

    needs_rebuild: bool
    reason: str = ""


NEVER_BUILT = "never built"
LAST_FAILED = "last build failed"
COMMIT_DIFFERS = "recorded commit differs from last successful build"
MANIFEST_CHANGED = "manifest changed since last successful build"


def assess(
    inputs: Mapping[str, BuildInputs], history: Mapping[str, PackageHistory]
) -> dict[str, Verdict]:
    """Compare each package's current build inputs with its history.

    Up to date when the last successful build has the current build key.  Otherwise the
    reason is the first that applies of: the last build of the current inputs failed
    (``last build failed``; ``last build cancelled`` / ``skipped (...)`` likewise),
    ``never built``, the recorded commit differs, the manifest changed, a dependency's
    key changed (``dependency X rebuilt since`` when X has been rebuilt since,
    ``dependency X changed since last successful build`` otherwise).
    """
    verdicts: dict[str, Verdict] = {}
    for name, now in inputs.items():
        past = history.get(name, PackageHistory())
        ok = past.last_success
        if ok is not None and ok.build_key == now.key:
            verdicts[name] = Verdict(False)
            continue
        last = past.last_row
        if last is not None and last.build_key == now.key and last.status != "succeeded":
            if last.status == "failed":
                verdicts[name] = Verdict(True, LAST_FAILED)
                continue
            if last.status in ("cancelled", "skipped"):
                detail = f" ({last.reason})" if last.reason else ""
                verdicts[name] = Verdict(True, f"last build {last.status}{detail}")
                continue
        if ok is None:
            verdicts[name] = Verdict(True, NEVER_BUILT)
        elif ok.commit != now.commit:
            verdicts[name] = Verdict(True, COMMIT_DIFFERS)
        elif ok.digest != now.digest:
            verdicts[name] = Verdict(True, MANIFEST_CHANGED)
        else:
            verdicts[name] = Verdict(True, _dependency_reason(ok, now, history))
    return verdicts


def _dependency_reason(
    ok: BuildRecord, now: BuildInputs, history: Mapping[str, PackageHistory]
) -> str:
    changed = [dep for dep, key in sorted(now.deps.items()) if ok.deps.get(dep) != key]
    for dep in changed:
        dep_ok = history.get(dep, PackageHistory()).last_success
        if (
            dep_ok is not None
            and dep_ok.build_key == now.deps[dep]
            and (dep_ok.finished_at or 0) >= (ok.finished_at or 0)
        ):
            return f"dependency {dep} rebuilt since"
    if changed:
        return f"dependency {changed[0]} changed since last successful build"
    return "build inputs changed since last successful build"


def verdicts_for(
    state: BuildState | None, product: Product, links: Mapping[str, str]
) -> tuple[dict[str, BuildInputs], dict[str, PackageHistory], dict[str, Verdict]]:
    """Build inputs, history and verdicts of every package (``state`` None: no history)."""
    inputs = build_inputs(product, links)
    history = state.history() if state is not None else {}
    return inputs, history, assess(inputs, history)


def since_last_success(
    state: BuildState | None, product: Product, links: Mapping[str, str]
) -> dict[str, str]:
    """The packages whose build key differs from their last successful build, with why.

    ``links`` are the gitlinks (path -> recorded commit) of ``product``'s commit; with no
    state (``None``) every package is "never built".  Dependents are *not* added (they
    are when their own key changed with a dependency's): ``superbuild.planning`` adds
    them.
    """
    _, _, verdicts = verdicts_for(state, product, links)
    return {n: v.reason for n, v in verdicts.items() if v.needs_rebuild}
