"""Releases: immutable, signed trees of yum repositories made of recorded builds.

- :mod:`~superbuild.release.pool`: the content-addressed pool every successful build's
  artifacts are hard-linked into (so they outlive the output repository's replacements);
- :mod:`~superbuild.release.evr`: rpm's version ordering;
- :mod:`~superbuild.release.compose`: ``release create``, ``list``, ``show``, ``delete``,
  ``gc``;
- :mod:`~superbuild.release.diff`: what changed between two releases;
- :mod:`~superbuild.release.publish`: an atomic copy to a directory clients read.

This module imports none of them: the state's recorder imports the pool alone.
"""

from __future__ import annotations

#: The target of a product that declares no ``targets:``: one implicit target, today's
#: single output repository.  A release names every target, this one included.
DEFAULT_TARGET = "default"
