"""Runner profiles: named sets of Beam flags, shipped as YAML package data.

``--profile NAME`` loads ``hybridflow/runners_config/NAME.yaml``; ``--profile
PATH`` loads a user file of the same form::

    description: one line
    options:            # Beam flags without the leading --
      runner: FlinkRunner
      parallelism: 2
    required:           # flags that must be set, with an example of each
      project: "--project=YOUR_GCP_PROJECT"

Command-line flags override profile options.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Mapping, Sequence

import yaml

from hybridflow.errors import InvalidOptionError, UnknownProfileError

__all__ = ["Profile", "load_profile", "list_profiles", "PROFILE_DIR"]

PROFILE_DIR = pathlib.Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    options: Mapping[str, Any]
    required: Mapping[str, str]
    path: pathlib.Path

    def flags(self) -> list[str]:
        from hybridflow.options import flags_from_mapping

        return flags_from_mapping(self.options)

    def check_required(self, options) -> None:
        """Raises InvalidOptionError naming every required flag that is unset."""
        values = options.get_all_options()
        missing = [name for name in self.required if values.get(name) in (None, "")]
        if missing:
            examples = " ".join(self.required[name] for name in missing)
            raise InvalidOptionError(
                f"profile {self.name} needs {', '.join('--' + m for m in missing)}: pass {examples}"
            )


def _check_options(path: pathlib.Path, options: Mapping[str, Any]) -> None:
    """Raises InvalidOptionError for an option value no flag can take: a list
    for a flag that takes one value, or a nested mapping/list."""
    from hybridflow.options import repeatable_flags

    repeatable = repeatable_flags()
    for name, value in options.items():
        if isinstance(value, (list, tuple)):
            if name not in repeatable:
                raise InvalidOptionError(
                    f"profile {path}: options.{name} is a list, but --{name} takes one value; "
                    f"give one value (e.g. {name}: {value[0] if value else '...'})"
                )
            if any(isinstance(v, (list, tuple, dict)) for v in value):
                raise InvalidOptionError(f"profile {path}: options.{name}: give a list of plain values")


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> Profile:
    """Loads a packaged profile by name, or a YAML file by path."""
    path = pathlib.Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise UnknownProfileError(
                f"unknown profile {name_or_path!r}: use one of {', '.join(list_profiles())} "
                "or the path of a .yaml profile file"
            )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InvalidOptionError(f"profile {path}: invalid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict) or not isinstance(data.get("options", {}), dict):
        raise InvalidOptionError(f"profile {path}: expected a mapping with an 'options' mapping")
    unknown = set(data) - {"description", "options", "required"}
    if unknown:
        raise InvalidOptionError(f"profile {path}: unknown keys {sorted(unknown)}; use description, options, required")
    required = data.get("required") or {}
    if isinstance(required, Sequence) and not isinstance(required, str):
        required = {name: f"--{name}=..." for name in required}
    if not isinstance(required, Mapping) or not all(isinstance(k, str) for k in required):
        raise InvalidOptionError(
            f"profile {path}: 'required' must map flag names to an example of each "
            f"(project: \"--project=YOUR_PROJECT\") or list flag names, not {required!r}"
        )
    _check_options(path, data.get("options") or {})
    return Profile(
        name=path.stem,
        description=str(data.get("description", "")),
        options=dict(data.get("options") or {}),
        required=dict(required),
        path=path,
    )
