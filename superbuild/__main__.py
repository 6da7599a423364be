"""``python -m superbuild`` and the ``superbuild`` console script."""

from __future__ import annotations


def entrypoint() -> None:
    from superbuild.cli import main

    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
