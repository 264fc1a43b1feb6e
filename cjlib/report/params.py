"""Notebook parameters: read them from the ``parameters`` cell, check values before any kernel.

A parameter line reads ``name: type = literal  # help``. Values from a YAML file are overridden by
``-p key=value`` pairs (values parsed as YAML: ``-p alpha=0.01``, ``-p segments=[device]``). A name
no notebook declares, or a value of the wrong type, is an error that lists the valid parameters.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Parameter",
    "ParameterError",
    "notebook_parameters",
    "parse_pairs",
    "load_yaml",
    "assign",
]

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "dict": (dict,),
    "list": (list,),
    "None": (type(None),),
}


class ParameterError(ValueError):
    """A parameter that no notebook declares, or a value of the wrong type."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    default: Any
    help: str

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` fits the declared type (``int`` is not ``bool``; unions allowed)."""
        allowed: list[type] = []
        for part in self.type.split("|"):
            base = part.strip().split("[", 1)[0]
            if base not in _TYPES:
                return True  # a type we cannot check: accept
            allowed.extend(_TYPES[base])
        if isinstance(value, bool) and bool not in allowed:
            return False
        return isinstance(value, tuple(allowed))


def notebook_parameters(notebook: str | Path) -> dict[str, Parameter]:
    """``{name: Parameter}`` from a notebook's ``parameters`` cell (as papermill reads it)."""
    import papermill as pm

    found = {}
    for name, info in pm.inspect_notebook(str(notebook)).items():
        try:
            default = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            default = info["default"]
        found[name] = Parameter(name, info["inferred_type_name"] or "", default, info["help"] or "")
    return found


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}`` (values parsed as YAML)."""
    import yaml

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"-p expects key=value, got {pair!r}")
        params[key.strip()] = yaml.safe_load(value) if value else ""
    return params


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parameters from a YAML mapping file."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"parameter file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ParameterError(
            f"parameter file {str(path)!r} must hold a mapping, got {type(data).__name__}"
        )
    return data


def assign(notebooks: Sequence[Path], params: Mapping[str, Any]) -> dict[Path, dict[str, Any]]:
    """Give each notebook the parameters it declares; refuse unknown names and wrong types."""
    declared = {nb: notebook_parameters(nb) for nb in notebooks}
    unknown = [k for k in params if not any(k in d for d in declared.values())]
    if unknown:
        listing = "; ".join(f"{nb.stem}: {', '.join(d) or '(none)'}" for nb, d in declared.items())
        raise ParameterError(f"unknown parameter(s) {unknown}; valid parameters are {listing}")
    out: dict[Path, dict[str, Any]] = {}
    for nb, decl in declared.items():
        mine = {k: v for k, v in params.items() if k in decl}
        for key, value in mine.items():
            p = decl[key]
            if not p.accepts(value):
                raise ParameterError(
                    f"parameter {key!r} of {nb.stem} must be {p.type} "
                    f"(default {p.default!r}), got {value!r} "
                    f"({type(value).__name__})"
                )
        out[nb] = mine
    return out
