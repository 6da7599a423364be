"""``python -m superbuild`` and the ``superbuild`` console script."""

from __future__ import annotations


def entrypoint() -> None:
    import sys

    # `changed --format json` (CI's question on every push) first tries the lean path,
    # which imports neither argparse nor the process machinery; None: not answered there.
    from superbuild.fastchanged import main as fast

    code = fast(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    from superbuild.cli import main

    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
