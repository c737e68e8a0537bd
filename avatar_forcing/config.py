"""Typed configs: every subsystem's dataclass config can be read from and written to JSON/YAML.

Subsystem configs live beside their code (``model/config.py``, ``train/config.py`` …) and
register presets there; this module gives the shared load/save and override logic.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

from avatar_forcing.errors import ConfigError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a (possibly nested) dataclass, rejecting unknown keys with a clear error."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls} is not a dataclass")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def override(cfg: T, **changes: Any) -> T:
    """Return a copy with fields replaced; ``None`` values are ignored (unset CLI flags)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(cfg, **changes)


def save(cfg: Any, path: str | Path) -> None:
    path = Path(path)
    text = json.dumps(to_dict(cfg), indent=2) if path.suffix == ".json" else _yaml().safe_dump(to_dict(cfg))
    path.write_text(text)


def load(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else _yaml().safe_load(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must hold a mapping")
    return from_dict(cls, data)


def _yaml():
    import yaml

    return yaml
