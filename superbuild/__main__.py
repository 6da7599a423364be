"""``python -m superbuild`` and the ``superbuild`` console script."""

from __future__ import annotations


def entrypoint() -> None:
    import sys

    # `changed --format json` (CI's question on every push) first tries the lean path,
    # which imports neither argparse nor the process machinery; None: not answered there.
    from superbuild.fastchanged import main as fast

    code = fast(sys.argv[1:])
    if code is not None:
        try:
            sys.stdout.flush()  # the report is flushed already; these are cheap no-ops
            sys.stderr.flush()
        except (OSError, ValueError):
            raise SystemExit(code) from None
        # Answered and flushed: nothing is left to clean up (no atexit handler, no file
        # open for writing), so skip the interpreter's teardown of every object it made.
        import os

        os._exit(code)
    # `status`: its one slow git command starts now, beside the imports (prestart).
    from superbuild import prestart

    prestart.before_status(sys.argv[1:])
    try:
        from superbuild.cli import main

        code = main()
    finally:
        prestart.discard()  # what the verb did not take (it failed before, or it was not run)
    raise SystemExit(code)


if __name__ == "__main__":
    entrypoint()
