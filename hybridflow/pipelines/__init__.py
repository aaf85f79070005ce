"""Assembled pipelines and their registry.

A pipeline module declares its parameters (a PipelineOptions subclass), a
``build(p, options) -> dict[str, PCollection]`` that only constructs the
graph, a ``sinks(options) -> dict[str, uri]`` naming where each output goes,
and registers itself with :func:`register_pipeline`. The CLI (and
:func:`run_pipeline`) resolves profile + flags into one PipelineOptions,
calls ``build``, writes each output with ``WriteTo`` and runs.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import UnknownPipelineError
from hybridflow.options import MODES

__all__ = ["PipelineSpec", "register_pipeline", "get_pipeline", "list_pipelines", "BUILTIN_PIPELINES"]

BUILTIN_PIPELINES = ("hybridflow.pipelines.fraud",)


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """A registered pipeline.

    Attributes:
      name: the name used on the command line.
      description: one line for ``hybridflow list``.
      build: ``build(p, options) -> {output name: PCollection}``.
      sinks: ``sinks(options) -> {output name: URI}`` for the outputs to write.
      options_class: the pipeline's own PipelineOptions subclass.
      common: the shared HybridflowOptions flags the pipeline reads.
      defaults: per mode, defaults of those shared flags.
      modes: supported modes; ``default_mode`` is used without ``--mode``.
      at_least_once: whether the pipeline's results stay right when records
        are delivered more than once (Dataflow's at-least-once streaming
        mode); false for anything that counts or aggregates.
    """

    name: str
    description: str
    build: Callable[[beam.Pipeline, PipelineOptions], dict]
    sinks: Callable[[PipelineOptions], Mapping[str, str]]
    options_class: Optional[type] = None
    common: Sequence[str] = ("mode", "input", "output")
    defaults: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    modes: Sequence[str] = MODES
    default_mode: str = "batch"
    validate: Optional[Callable[[PipelineOptions], None]] = None
    at_least_once: bool = False

    def options(self, argv: Sequence[str] = (), profile_flags: Sequence[str] = ()) -> PipelineOptions:
        """Resolved PipelineOptions for this pipeline (what the CLI uses)."""
        from hybridflow.options import check_finite, resolve_options

        options = resolve_options(argv, profile_flags, self.defaults, self.modes, self.default_mode)
        if self.validate is not None:
            self.validate(options)
        check_finite(options)
        return options


_REGISTRY: dict[str, PipelineSpec] = {}
_loaded = False


def register_pipeline(spec: PipelineSpec) -> PipelineSpec:
    """Registers ``spec`` under ``spec.name`` (a later registration replaces it)."""
    _REGISTRY[spec.name] = spec
    return spec


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for module in BUILTIN_PIPELINES:
            importlib.import_module(module)
        _loaded = True


def list_pipelines() -> list[PipelineSpec]:
    _load_builtins()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_pipeline(name: str) -> PipelineSpec:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UnknownPipelineError(
            f"unknown pipeline {name!r}: run `hybridflow list` to see them (known: {known})"
        ) from None
