"""Where build options come from: command line, then environment, then superbuild.yaml."""

from __future__ import annotations

import argparse

import pytest

from superbuild.commands.build import options_from
from superbuild.errors import UsageError
from superbuild.package import Settings


def args(**kw: object) -> argparse.Namespace:
    base = {
        "jobs": None,
        "builder": None,
        "output": None,
        "fail_fast": False,
        "executor": None,
        "scheduler_address": None,
    }
    return argparse.Namespace(**{**base, **kw})


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPERBUILD_EXECUTOR", raising=False)
    monkeypatch.delenv("SUPERBUILD_SCHEDULER_ADDRESS", raising=False)
    options = options_from(args(), Settings())
    assert options.executor == "local" and options.executor_options == {}
    assert options.jobs >= 1


def test_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(jobs=3, executor="dask", scheduler_address="tcp://settings:8786")
    monkeypatch.delenv("SUPERBUILD_EXECUTOR", raising=False)
    monkeypatch.delenv("SUPERBUILD_SCHEDULER_ADDRESS", raising=False)
    options = options_from(args(), settings)
    assert (options.jobs, options.executor) == (3, "dask")
    assert options.executor_options == {"address": "tcp://settings:8786"}
    monkeypatch.setenv("SUPERBUILD_SCHEDULER_ADDRESS", "tcp://env:8786")
    assert options_from(args(), settings).executor_options == {"address": "tcp://env:8786"}
    flag = options_from(args(scheduler_address="tcp://flag:8786", jobs=5), settings)
    assert flag.executor_options == {"address": "tcp://flag:8786"} and flag.jobs == 5
    monkeypatch.setenv("SUPERBUILD_EXECUTOR", "local")
    assert options_from(args(), settings).executor == "local"
    assert options_from(args(executor="dask"), settings).executor == "dask"


def test_scheduler_address_needs_dask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUPERBUILD_EXECUTOR", raising=False)
    with pytest.raises(UsageError, match="needs --executor dask"):
        options_from(args(scheduler_address="tcp://x:1"), Settings())
    with pytest.raises(UsageError, match="-j must be at least 1"):
        options_from(args(jobs=-1), Settings())
