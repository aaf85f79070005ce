"""metadata.json of a flex template, generated from a pipeline's own options.

The parameters are the shared :class:`~hybridflow.options.HybridflowOptions`
flags the pipeline reads (``spec.common``) followed by the flags of its own
options class, in declaration order. Each becomes one metadata parameter:

- ``label`` from the flag name, ``helpText`` from the flag's help and its
  default;
- ``regexes`` from the flag's argparse ``type`` and ``choices``
  (:data:`TYPE_REGEXES`); a value the regex accepts is one the pipeline's
  parser accepts (a property test checks it), so Dataflow rejects a bad
  value before it starts a launcher;
- ``isOptional`` false only for flags that have no usable default on Dataflow
  (:data:`REQUIRED_ON_DATAFLOW`: the default output is a local directory,
  which on Dataflow would be a worker's disk);
- ``paramType`` (the console's input widget) from the same: ``ENUM`` with
  ``enumOptions`` for choices, ``BOOLEAN``, ``NUMBER``, ``GCS_READ_FILE`` /
  ``GCS_WRITE_FOLDER`` for the shared input and output (:data:`URI_PARAM_TYPES`),
  ``TEXT`` otherwise; ``defaultValue`` when the default is the same in every
  mode;
- ``parentName: mode`` and ``parentTriggerValues`` for flags whose help starts
  with ``Streaming:``, ``Batch:`` or ``Hybrid:``: the console shows them only for that mode.

The fields are those of Dataflow's ``TemplateMetadata`` / ``ParameterMetadata``
(``tests/flex/metadata.schema.json``, a JSON Schema written from Google's
reference of them, validates every generated metadata.json).

Besides its own parameters, a template launch accepts Dataflow's pipeline
options (``max_num_workers``, ``sdk_container_image``, ``service_account_email``
...: :func:`dataflow_option_names`), as ``gcloud dataflow flex-template run
--parameters`` does: the launcher hands them to ``main.py`` like the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any, Mapping, Optional, Sequence

from hybridflow.durations import format_duration
from hybridflow.errors import InvalidOptionError, SchemaError
from hybridflow.options import HybridflowOptions, bool_arg, duration_arg, parser_actions
from hybridflow.redaction import redact, refuse_passwords

__all__ = [
    "TYPE_PARAM_TYPES",
    "URI_PARAM_TYPES",
    "dataflow_option_names",
    "TemplateParameter",
    "template_parameters",
    "template_metadata",
    "check_parameters",
    "TYPE_REGEXES",
    "REQUIRED_ON_DATAFLOW",
]

_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
#: argparse ``type`` -> the regex a template parameter of that type must match.
TYPE_REGEXES: Mapping[Any, str] = {
    int: r"^[+-]?[0-9]+$",
    float: rf"^[+-]?{_NUMBER}(?:[eE][+-]?[0-9]+)?$",
    duration_arg: rf"^{_NUMBER}(?:ms|s|m|h|d)?$",
    bool_arg: r"^(?:true|false|True|False|yes|no|on|off|1|0)$",
}
#: argparse ``type`` -> Dataflow ``paramType`` (choices are ``ENUM``; anything else ``TEXT``).
TYPE_PARAM_TYPES: Mapping[Any, str] = {int: "NUMBER", float: "NUMBER", bool_arg: "BOOLEAN"}
#: Shared URI flags -> the console's Cloud Storage picker.
URI_PARAM_TYPES: Mapping[str, str] = {"input": "GCS_READ_FILE", "output": "GCS_WRITE_FOLDER"}
#: Help-text prefixes of mode-only flags -> the ``mode`` values that show them.
_MODE_ONLY = {"Streaming:": ("streaming",), "Batch:": ("batch",), "Hybrid:": ("hybrid",)}
#: Shared flags whose pipeline default is a local path: required in a
#: template, and they must be a URI with a scheme (gs://, s3:// ...).
REQUIRED_ON_DATAFLOW = ("output",)
_REMOTE_URI = r"^[a-z][a-z0-9+.-]*://\S+$"


@dataclasses.dataclass(frozen=True)
class TemplateParameter:
    """One parameter of a flex template (an entry of ``parameters[]``)."""

    name: str
    label: str
    help_text: str
    optional: bool
    regexes: tuple[str, ...]
    param_type: str = "TEXT"
    default_value: Optional[str] = None
    enum_options: tuple[str, ...] = ()
    parent_trigger_values: tuple[str, ...] = ()  # values of ``mode`` that show this parameter

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "helpText": self.help_text,
            "isOptional": self.optional,
            "paramType": self.param_type,
        }
        if self.regexes:
            data["regexes"] = list(self.regexes)
        if self.default_value is not None:
            data["defaultValue"] = self.default_value
        if self.enum_options:
            data["enumOptions"] = [{"value": v, "label": v} for v in self.enum_options]
        if self.parent_trigger_values:
            data["parentName"] = "mode"
            data["parentTriggerValues"] = list(self.parent_trigger_values)
        return data

    def matches(self, value: str) -> bool:
        """True when ``value`` matches every regex (as Dataflow checks it)."""
        return all(re.search(regex, value) for regex in self.regexes)


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _default_text(spec, action: argparse.Action, common: bool) -> Optional[str]:
    def text(value):
        if action.type is duration_arg and isinstance(value, (int, float)):
            return format_duration(value)
        return str(value)

    if not common:
        return None if action.default is None else text(action.default)
    if action.dest == "mode":
        return spec.default_mode
    per_mode = {m: (spec.defaults.get(m) or {}).get(action.dest) for m in spec.modes}
    if all(v is None for v in per_mode.values()):
        return None
    texts = {m: text(v) for m, v in per_mode.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{m}: {v}" for m, v in texts.items())


def _regexes(spec, action: argparse.Action) -> tuple[str, ...]:
    flag = f"--{action.dest}"
    if action.nargs == 0:
        raise SchemaError(
            f"pipeline {spec.name}: {flag} is an on/off flag, but the flex template launcher passes every "
            f"parameter as {flag}=VALUE; declare it with choices=('true', 'false') instead"
        )
    if action.choices:
        return ("^(?:" + "|".join(re.escape(str(c)) for c in action.choices) + ")$",)
    if action.type is None or action.type is str:
        return (_REMOTE_URI,) if action.dest in REQUIRED_ON_DATAFLOW else ()
    regex = TYPE_REGEXES.get(action.type)
    if regex is None:
        name = getattr(action.type, "__name__", repr(action.type))
        raise SchemaError(
            f"pipeline {spec.name}: {flag} has type {name}, which has no template regex; "
            "add one to hybridflow.flex.metadata.TYPE_REGEXES"
        )
    return (regex,)


def _param_type(action: argparse.Action) -> str:
    if action.choices:
        return "ENUM"
    if action.dest in URI_PARAM_TYPES:
        return URI_PARAM_TYPES[action.dest]
    return TYPE_PARAM_TYPES.get(action.type, "TEXT")


def _default_value(spec, action: argparse.Action, common: bool) -> Optional[str]:
    """The console's pre-filled value: the default when it is one value in every mode."""
    text = _default_text(spec, action, common)
    if text is None or "; " in text or action.dest in REQUIRED_ON_DATAFLOW:
        return None
    if action.type is bool_arg:
        return text.lower()
    return text


def template_parameters(spec) -> list[TemplateParameter]:
    """The template parameters of a registered pipeline (shared flags first)."""
    actions = [(a, True) for a in parser_actions(HybridflowOptions) if a.dest in spec.common]
    if spec.options_class is not None:
        actions += [(a, False) for a in parser_actions(spec.options_class)]
    params = []
    for action, common in actions:
        required = action.dest in REQUIRED_ON_DATAFLOW
        help_text = " ".join((action.help or _label(action.dest) + ".").split())
        default = _default_text(spec, action, common)
        if required:
            help_text += " Required on Dataflow: a gs:// (or other remote) URI."
        elif default is not None:
            help_text += f" Default: {default}."
        params.append(
            TemplateParameter(
                name=action.dest,
                label=_label(action.dest),
                help_text=help_text,
                optional=not required,
                regexes=_regexes(spec, action),
                param_type=_param_type(action),
                default_value=_default_value(spec, action, common),
                enum_options=tuple(str(c) for c in action.choices or ()),
                parent_trigger_values=next(
                    (modes for prefix, modes in _MODE_ONLY.items()
                     if help_text.startswith(prefix) and action.dest != "mode" and "mode" in spec.common
                     and set(modes) < set(spec.modes)),
                    (),
                ),
            )
        )
    return params


def template_metadata(spec) -> dict[str, Any]:
    """metadata.json of the flex template of ``spec``, as a dict."""
    streaming = "streaming" in spec.modes
    data: dict[str, Any] = {
        "name": f"hybridflow {spec.name}",
        "description": (
            f"{spec.description}. Modes: {', '.join(spec.modes)} (parameter mode, default {spec.default_mode})."
        ),
        "streaming": streaming,
    }
    if streaming:
        # hybridflow pipelines count and aggregate: under at-least-once a
        # duplicated record would change a count, so they need exactly-once
        # unless the pipeline says its results tolerate duplicates.
        at_least_once = bool(spec.at_least_once)
        data["supportsAtLeastOnce"] = at_least_once
        data["supportsExactlyOnce"] = True
        data["defaultStreamingMode"] = "EXACTLY_ONCE"
    data["parameters"] = [p.to_json() for p in template_parameters(spec)]
    return data


#: Options a launch sets itself (``--project``, ``--region``, ``--job-name``) or that make no
#: sense for a template job.
_NOT_PASSED_THROUGH = ("project", "region", "job_name", "runner", "template_location", "dataflow_endpoint")


def dataflow_option_names() -> frozenset[str]:
    """Beam's Dataflow job options a template launch passes through to the job
    (``max_num_workers``, ``sdk_container_image``, ``service_account_email``,
    ``subnetwork``, ``machine_type``, ``experiments``, ``labels``,
    ``staging_location`` ...): the valued flags of Beam's GoogleCloudOptions,
    WorkerOptions and DebugOptions (on/off flags such as ``--no_use_public_ips``
    cannot be written ``--name=value``: ``template launch`` has flags for them)."""
    from apache_beam.options.pipeline_options import DebugOptions, GoogleCloudOptions, WorkerOptions

    names = {a.dest for cls in (GoogleCloudOptions, WorkerOptions, DebugOptions) for a in parser_actions(cls)
             if a.nargs != 0}
    return frozenset(names - set(_NOT_PASSED_THROUGH))


def check_parameters(spec, values: Mapping[str, str], require: bool = True) -> list[str]:
    """Validates template parameter values as Dataflow and the pipeline would.

    Every name must be a template parameter or one of Beam's Dataflow job
    options (:func:`dataflow_option_names`); every value must match its
    regexes and be accepted by the pipeline's own parser (its options, Beam's,
    and its ``validate``) and hold no password (a job's parameters are not
    secret: credentials go by reference, :mod:`hybridflow.io.secrets`); with
    ``require`` every required parameter must be given. Returns the values as
    ``--name=value`` flags; raises :class:`~hybridflow.errors.InvalidOptionError`
    naming the parameter.
    """
    params = {p.name: p for p in template_parameters(spec)}
    refuse_passwords([f"{name}={value}" for name, value in values.items()], "template parameter")
    passed_through = dataflow_option_names()
    for name, value in values.items():
        param = params.get(name)
        if param is None and name in passed_through:
            continue  # checked by Beam's parser below
        if param is None:
            import difflib

            close = difflib.get_close_matches(name, params, n=1)
            hint = f"did you mean {close[0]}?" if close else f"template parameters: {', '.join(params)}"
            raise InvalidOptionError(f"unknown template parameter {name!r} of pipeline {spec.name}: {hint}")
        if not param.matches(value):
            raise InvalidOptionError(
                f"template parameter {name}={redact(value)!r} does not match {' and '.join(param.regexes)}"
            )
    if require:
        missing = [p.name for p in params.values() if not p.optional and p.name not in values]
        if missing:
            raise InvalidOptionError(
                f"template of pipeline {spec.name} needs "
                + ", ".join(f"--param {m}=..." for m in missing)
                + " (e.g. --param output=gs://YOUR_BUCKET/out)"
            )
    flags = [f"--{name}={value}" for name, value in values.items()]
    spec.options(flags)  # the pipeline's own parser and validate()
    return flags


def parameter_flags(values: Sequence[str], what: str = "--param") -> dict[str, str]:
    """``["k=v", ...]`` (the CLI's ``--param``) -> ``{"k": "v"}``."""
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidOptionError(f"{what} {item!r}: write {what} NAME=VALUE")
        if name in out:
            raise InvalidOptionError(f"{what} {name} given twice")
        out[name] = value
    return out
