"""Packaging pipelines: one package at one recorded commit -> artifacts in the output repository.

Modules, from the bottom up:

- :mod:`~superbuild.pipelines.transport`: files travelling to and from remote workers,
  with their checksums;
- :mod:`~superbuild.pipelines.api`: the records every pipeline shares
  (:class:`~superbuild.pipelines.api.BuildContext`, ``JobInputs``, ``BuildProducts``,
  ``JobOutputs``, ``PackageBuild``), ``PipelineFailed`` and the ``Pipeline`` protocol;
- :mod:`~superbuild.pipelines.stage`: one stage's log, timeout and duration; the build
  environment;
- :mod:`~superbuild.pipelines.source`: what every source stage shares;
- :mod:`~superbuild.pipelines.registry`: pipeline names (the manifest schema's enums),
  loaded on demand;
- :mod:`~superbuild.pipelines.command` and :mod:`~superbuild.pipelines.rpm` (a package
  split by stage): the pipelines;
- :mod:`~superbuild.pipelines.task`: a package build as a :class:`superbuild.jobs.Task`
  (prepare on the coordinator, build anywhere, collect on the coordinator).

This package's ``__init__`` imports nothing, so that ``superbuild changed`` can read the
registry's names without loading a pipeline.  Pipelines never print; they write their
logs and return their records.
"""
