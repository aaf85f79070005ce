"""Pipelines: plug-in packages, found through the ``hybridflow.pipelines`` entry-point group.

A pipeline is a :class:`PipelineSpec`: its parameters (a
:class:`PipelineParameters` subclass), a ``build(p, options) -> dict[str,
PCollection]`` that only constructs the graph, ``sinks(options) -> dict[str,
uri]`` naming where each output goes, its synthetic generators and its report
sections. The CLI (and :func:`hybridflow.pipelines.run.run_pipeline`)
resolves profile + flags into one PipelineOptions, calls ``build``, writes
each output with ``WriteTo`` and runs.

Where pipelines come from (:func:`get_pipeline` takes any of these):

- an installed distribution's entry point in the group ``hybridflow.pipelines``
  (``iot = "my_package.iot:SPEC"`` in its pyproject.toml); the built-in
  pipelines are declared the same way in hybridflow's own pyproject.toml;
- ``module:attr`` or ``module`` (its ``SPEC``) of an importable module;
- ``path/to/file.py`` or ``path/to/file.py:attr``: a pipeline that is not
  installed (the file's directory goes on ``sys.path``, as ``python file.py`` does);
- :func:`register_pipeline` from Python (a notebook, a test).

``hybridflow new NAME`` writes a package with all of it (:mod:`hybridflow.pipelines.scaffold`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import logging
import pathlib
import sys
from typing import Any, Callable, Mapping, Optional, Sequence

from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.errors import UnknownPipelineError
from hybridflow.options import MODES

__all__ = [
    "PipelineSpec",
    "PipelineParameters",
    "PipelineOrigin",
    "register_pipeline",
    "get_pipeline",
    "list_pipelines",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "hybridflow.pipelines"

_LOG = logging.getLogger(__name__)


class PipelineParameters(PipelineOptions):
    """The base class of a pipeline's own flags.

    Subclass it (not PipelineOptions directly) and add the flags in
    ``_add_argparse_args`` as with any PipelineOptions. Beam parses all
    direct subclasses of PipelineOptions with one parser, so two of them
    may not define the same flag; hybridflow parses a pipeline's parameters
    for that pipeline only, so two pipelines may both have a ``--history``.

    Beam's ``view_as`` adds every value of a view to the dict all views
    share, where Beam's own parsing, which does not know these flags, takes
    them for overrides: the defaults (``None`` ones too) would go into the
    job's options and display data, which Dataflow refuses for ``None``. So
    the shared dict keeps only the values of the flags given on the command
    line (typed, in the job's options); a view holds its values itself (a
    value set on one view is not seen by another: give values as flags).
    """

    def __setattr__(self, name, value):
        if name == "_all_options" and "_visible_options" in self.__dict__:
            # `view_as` attaches the shared dict after adding this class's options to it
            from hybridflow.options import parser_actions

            given = {
                action.dest for action in parser_actions(type(self)) for flag in self._flags or ()
                if any(flag == opt or flag.startswith(opt + "=") for opt in action.option_strings)
            }
            value = {option: value[option] if option in given else value.pop(option)
                     for option in self._visible_option_list() if option in value}
        super().__setattr__(name, value)


@dataclasses.dataclass(frozen=True)
class PipelineOrigin:
    """Where a pipeline was loaded from.

    Attributes:
      ref: what loads it again (``hybridflow run REF``): the entry-point name,
        ``module:attr`` or ``path.py:attr``.
      kind: ``entry_point``, ``module``, ``file`` or ``registered``.
      distribution: the installed distribution that provides it (None for a
        file or a module that belongs to none).
      version: that distribution's version.
    """

    ref: str
    kind: str
    distribution: Optional[str] = None
    version: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """A pipeline.

    Attributes:
      name: the name used on the command line.
      description: one line for ``hybridflow list``.
      build: ``build(p, options) -> {output name: PCollection}``.
      sinks: ``sinks(options) -> {output name: URI}`` for the outputs to write.
      options_class: the pipeline's own :class:`PipelineParameters` subclass.
      common: the shared HybridflowOptions flags the pipeline reads.
      defaults: per mode, defaults of those shared flags.
      modes: supported modes; ``default_mode`` is used without ``--mode``.
      validate: ``validate(options)`` raises InvalidOptionError for bad flags.
      at_least_once: whether the pipeline's results stay right when records
        are delivered more than once (Dataflow's at-least-once streaming
        mode); false for anything that counts or aggregates.
      generators: the :class:`~hybridflow.io.synthetic.SyntheticStream`
        classes behind the pipeline's ``synthetic://`` URIs (``hybridflow
        generate`` writes those of its default batch inputs).
      report: ``report(directory) -> [Section, ...]``: the pipeline's own
        sections of ``hybridflow report`` (:mod:`hybridflow.monitoring.report`),
        after the alerts over time; every pipeline has the standard ones.
      origin: where it was loaded from (set by :func:`get_pipeline`).
    """

    name: str
    description: str
    build: Callable[[Any, PipelineOptions], dict]
    sinks: Callable[[PipelineOptions], Mapping[str, str]]
    options_class: Optional[type] = None
    common: Sequence[str] = ("mode", "input", "output")
    defaults: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    modes: Sequence[str] = MODES
    default_mode: str = "batch"
    validate: Optional[Callable[[PipelineOptions], None]] = None
    at_least_once: bool = False
    generators: Sequence[type] = ()
    report: Optional[Callable[[str], list]] = None
    origin: Optional[PipelineOrigin] = dataclasses.field(default=None, compare=False)

    def options(self, argv: Sequence[str] = (), profile_flags: Sequence[str] = ()) -> PipelineOptions:
        """Resolved PipelineOptions for this pipeline (what the CLI uses)."""
        from hybridflow.options import check_finite, resolve_options

        options = resolve_options(
            argv, profile_flags, self.defaults, self.modes, self.default_mode, options_class=self.options_class
        )
        if self.validate is not None:
            self.validate(options)
        check_finite(options, self.options_class)
        return options

    def default_inputs(self, mode: str = "batch") -> dict[str, str]:
        """``{flag: URI}`` of the inputs a run in ``mode`` reads when given no
        input flags: the shared ``--input`` and the pipeline's own flags whose
        default is a URI."""
        from hybridflow.options import parser_actions

        found = {}
        value = (self.defaults.get(mode) or {}).get("input")
        if isinstance(value, str):
            found["input"] = value
        if self.options_class is not None:
            for action in parser_actions(self.options_class):
                if isinstance(action.default, str) and "://" in action.default:
                    found[action.dest] = action.default
        return found


_REGISTRY: dict[str, PipelineSpec] = {}


def register_pipeline(spec: PipelineSpec) -> PipelineSpec:
    """Registers ``spec`` under ``spec.name`` (a later registration replaces
    it, and wins over an installed pipeline of that name); returns it."""
    if spec.origin is None:
        spec = dataclasses.replace(spec, origin=PipelineOrigin(spec.name, "registered"))
    _REGISTRY[spec.name] = spec
    return spec


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _as_spec(obj: Any, where: str) -> PipelineSpec:
    if not isinstance(obj, PipelineSpec):
        raise UnknownPipelineError(
            f"{where} is a {type(obj).__name__}, not a hybridflow PipelineSpec; point it at the pipeline's SPEC"
        )
    return obj


def _attr(module: Any, attr: Optional[str], where: str) -> PipelineSpec:
    name = attr or "SPEC"
    if not hasattr(module, name):
        raise UnknownPipelineError(f"{where}: no attribute {name!r} (give MODULE:ATTR naming a PipelineSpec)")
    return _as_spec(getattr(module, name), f"{where}:{name}")


def _load_entry_point(ep: importlib.metadata.EntryPoint) -> PipelineSpec:
    where = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
    try:
        spec = _as_spec(ep.load(), where)
    except UnknownPipelineError:
        raise
    except Exception as exc:  # noqa: BLE001 - an installed plug-in that does not import
        raise UnknownPipelineError(f"{where} cannot be loaded: {type(exc).__name__}: {exc}") from exc
    if spec.name != ep.name:
        raise UnknownPipelineError(
            f"{where} names a pipeline called {spec.name!r}: the entry point's name and the spec's must match"
        )
    dist = ep.dist
    return dataclasses.replace(
        spec, origin=PipelineOrigin(ep.name, "entry_point", dist.name if dist else None, dist.version if dist else None)
    )


def _distribution_of(module_name: str) -> tuple[Optional[str], Optional[str]]:
    names = importlib.metadata.packages_distributions().get(module_name.split(".", 1)[0]) or []
    if not names:
        return None, None
    return names[0], importlib.metadata.version(names[0])


def _load_module(ref: str) -> PipelineSpec:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownPipelineError(f"pipeline {ref!r}: cannot import {module_name!r} ({exc})") from exc
    spec = _attr(module, attr or None, module_name)
    distribution, version = _distribution_of(module_name)
    return dataclasses.replace(spec, origin=PipelineOrigin(ref, "module", distribution, version))


def _load_file(ref: str) -> PipelineSpec:
    path_text, attr = ref, None
    if ":" in ref and not ref.endswith(".py"):
        path_text, attr = ref.rsplit(":", 1)
    path = pathlib.Path(path_text).resolve()
    if not path.is_file():
        raise UnknownPipelineError(f"pipeline {ref!r}: no such file {path}")
    name = path.stem
    if not name.isidentifier():
        raise UnknownPipelineError(f"pipeline {ref!r}: {path.name} is not a Python module name; rename the file")
    loaded = sys.modules.get(name)
    if loaded is not None and pathlib.Path(getattr(loaded, "__file__", "") or "").resolve() != path:
        raise UnknownPipelineError(
            f"pipeline {ref!r}: a module named {name!r} is already imported from {loaded.__file__}; rename the file"
        )
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # as `python file.py` does: its sibling modules import
    module = importlib.import_module(name)
    spec = _attr(module, attr, str(path))
    return dataclasses.replace(spec, origin=PipelineOrigin(f"{path}" + (f":{attr}" if attr else ""), "file"))


def _is_file_ref(ref: str) -> bool:
    return ref.split(":", 1)[0].endswith(".py") or "/" in ref or ref.endswith(".py")


def get_pipeline(ref: str) -> PipelineSpec:
    """The pipeline ``ref`` names: a registered or installed pipeline's name,
    ``module:attr`` / ``module`` (its ``SPEC``), or ``path/to/file.py[:attr]``.
    A pipeline loaded by module or file is registered under its name too."""
    if ref in _REGISTRY:
        return _REGISTRY[ref]
    for ep in _entry_points():
        if ep.name == ref:
            spec = _load_entry_point(ep)
            _REGISTRY.setdefault(spec.name, spec)
            return _REGISTRY[spec.name]
    if _is_file_ref(ref):
        spec = _load_file(ref)
    elif ":" in ref or "." in ref:
        spec = _load_module(ref)
    else:
        known = ", ".join(sorted({*_REGISTRY, *(ep.name for ep in _entry_points())})) or "none installed"
        raise UnknownPipelineError(
            f"unknown pipeline {ref!r}: run `hybridflow list` to see them (known: {known}); a pipeline that is "
            "not installed is given as MODULE:ATTR or path/to/file.py"
        )
    _REGISTRY[spec.name] = spec
    return spec


def list_pipelines() -> list[PipelineSpec]:
    """Every registered and installed pipeline, by name. An installed one that
    cannot be loaded is left out with a warning naming it and why."""
    for ep in _entry_points():
        if ep.name in _REGISTRY:
            continue
        try:
            _REGISTRY[ep.name] = _load_entry_point(ep)
        except UnknownPipelineError as exc:
            _LOG.warning("%s", exc)
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
