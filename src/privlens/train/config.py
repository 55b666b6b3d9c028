"""Typed configuration: YAML files loaded into (nested) dataclasses, ``key=value`` overrides.

Generic, so every training stage can reuse it: describe the settings as dataclasses whose fields
have defaults and type hints (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``Literal[...]``,
``tuple[T, ...]``, ``list[T]`` or a nested dataclass), then::

    config = load_config(Stage1Config, "configs/stage1_tiny.yaml", ["optim.steps=10", "seed=3"])

Every mistake raises :class:`ConfigError` naming the dotted key: unknown keys, values of the wrong
type (non-finite numbers such as ``.nan`` or ``.inf`` included), malformed overrides, unreadable
files. Override values are parsed as YAML scalars or flow sequences (``net.width=64``,
``camera.frozen_terms=[1,2,3]``, ``camera.init=null``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the offending key."""


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` checked against (and lightly converted to) the type hint ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: must not be empty (null), expected {_type_name(tp)}")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {', '.join(repr(a) for a in args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(
                _coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return _build(tp, value, key + ".")
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)} in the config schema")  # pragma: no cover


def _build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(
            f"unknown key {prefix}{unknown[0]} (known keys{' in ' + prefix[:-1] if prefix else ''}: {known})"
        )
    values = {}
    for name, value in data.items():
        values[name] = _coerce(value, hints[name], prefix + name)
    # Nested sections that were not given still get their defaults; report missing required keys.
    for name, field in fields.items():
        if name in values:
            continue
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key {prefix}{name}")
    try:
        instance = cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{prefix[:-1] or 'config'}: {error}") from error
    return instance


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` -> nested ``{"a": {"b": 1}, "c": [1, 2]}`` (values parsed as YAML)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.steps=100)")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"{key}: cannot parse the value {text!r} ({error})") from error
        node = nested
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{key}: {part} was given a value and also sub-keys")
            node = child
        node[parts[-1]] = value
    return nested


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursive dictionary merge: ``update`` wins, sections are merged key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file that holds a mapping (an empty file is ``{}``); :class:`ConfigError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML ({error})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a nested mapping, with the checks described in the module docstring."""
    return _build(cls, data)


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> T:
    """Defaults of ``cls``, updated by the YAML file ``path`` (if any), then by ``overrides``."""
    data = read_yaml(path) if path is not None else {}
    data = merge(data, parse_overrides(overrides))
    return _build(cls, data)


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain YAML-safe data (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def to_yaml(config: Any) -> str:
    """The resolved configuration as YAML text (loadable again with :func:`load_config`)."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)
