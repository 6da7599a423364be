"""Where build options come from: command line, then environment, then superbuild.yaml."""

from __future__ import annotations

import os

import pytest

from superbuild.config import BuildFlags, resolve
from superbuild.errors import UsageError
from superbuild.package import Settings


def test_defaults() -> None:
    config = resolve(BuildFlags(), Settings(), {})
    assert config.executor == "local" and config.executor_options == {}
    assert config.jobs == (os.cpu_count() or 1)
    assert (config.builder, config.output, config.fail_fast) == (None, None, False)


def test_precedence() -> None:
    settings = Settings(jobs=3, executor="dask", scheduler_address="tcp://settings:8786")
    config = resolve(BuildFlags(executor="dask"), settings, {})
    assert (config.jobs, config.executor) == (3, "dask")
    assert config.executor_options == {"address": "tcp://settings:8786"}
    env = {"SUPERBUILD_SCHEDULER_ADDRESS": "tcp://env:8786"}
    assert resolve(BuildFlags(), settings, env).executor_options == {"address": "tcp://env:8786"}
    flag = resolve(BuildFlags(scheduler_address="tcp://flag:8786", jobs=5), settings, env)
    assert flag.executor_options == {"address": "tcp://flag:8786"} and flag.jobs == 5
    env["SUPERBUILD_EXECUTOR"] = "local"
    assert resolve(BuildFlags(), settings, env).executor == "local"
    assert resolve(BuildFlags(executor="dask"), settings, env).executor == "dask"


def test_scheduler_address_from_flag_then_environment() -> None:
    env = {"SUPERBUILD_SCHEDULER_ADDRESS": "tcp://10.0.0.5:8786"}
    dask = BuildFlags(executor="dask")
    flag = BuildFlags(executor="dask", scheduler_address="tcp://flag:1")
    assert resolve(flag, Settings(), env).executor_options == {"address": "tcp://flag:1"}
    assert resolve(dask, Settings(), env).executor_options == {"address": "tcp://10.0.0.5:8786"}
    assert resolve(dask, Settings(), {}).executor_options == {}
    # the address is an option of the Dask executor only
    assert resolve(BuildFlags(), Settings(), env).executor_options == {}


def test_a_commit_cannot_send_its_build_to_its_own_scheduler() -> None:
    """superbuild.yaml's executor: dask + scheduler_address: is used only when the user
    chose dask (flag or environment); otherwise one line says how to allow it."""
    settings = Settings(executor="dask", scheduler_address="tcp://attacker:8786")
    with pytest.raises(UsageError, match=r"asks to send this build to tcp://attacker:8786"):
        resolve(BuildFlags(), settings, {})
    allowed = resolve(BuildFlags(), settings, {"SUPERBUILD_EXECUTOR": "dask"})
    assert allowed.executor_options == {"address": "tcp://attacker:8786"}
    # executor: dask alone runs an embedded cluster here: nothing leaves the machine
    assert resolve(BuildFlags(), Settings(executor="dask"), {}).executor_options == {}
    assert resolve(BuildFlags(executor="local"), settings, {}).executor == "local"


def test_scheduler_address_needs_dask() -> None:
    with pytest.raises(UsageError, match="needs --executor dask"):
        resolve(BuildFlags(scheduler_address="tcp://x:1"), Settings(), {})
    with pytest.raises(UsageError, match="-j must be at least 0"):
        resolve(BuildFlags(jobs=-1), Settings(), {})


def test_jobs_zero_is_the_cpu_count_on_the_command_line_and_in_settings() -> None:
    cpus = os.cpu_count() or 1
    assert resolve(BuildFlags(jobs=0), Settings(jobs=3), {}).jobs == cpus
    assert resolve(BuildFlags(), Settings(jobs=0), {}).jobs == cpus
    assert resolve(BuildFlags(jobs=2), Settings(jobs=0), {}).jobs == 2


def test_output_flag_is_resolved_and_fail_fast_kept(tmp_path: object) -> None:
    config = resolve(BuildFlags(output="out", fail_fast=True), Settings(), {})
    assert config.output is not None and config.output.is_absolute()
    assert config.output.name == "out" and config.fail_fast
