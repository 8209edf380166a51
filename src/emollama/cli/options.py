"""Argparse from dataclasses: a command's options dataclass is the only place its defaults are stated.

Each field becomes one argument: ``--field-name`` (dest ``field_name``), or a positional with ``positional=True``.
The argparse default, type and ``required`` come from the field; `arg` carries the rest as field metadata (help,
flag, choices, metavar, ...). A help text names its default as ``{default}`` (optionally ``{default:g}``), filled
from the dataclass, so the text can never disagree with the value. `options_from_args` turns the parsed namespace
back into the dataclass that the command's ``run(opts)`` takes.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_MISSING: Any = dataclasses.MISSING
_PLACEHOLDER = re.compile(r"\{default(?::([^{}]*))?\}")


def arg(default: Any = _MISSING, *, help: str = "", flag: str | tuple[str, ...] | None = None,  # noqa: A002
        positional: bool = False, choices: Any = None, metavar: str | tuple[str, ...] | None = None,
        type: Callable[[str], Any] | None = None, nargs: int | str | None = None,  # noqa: A002
        action: str | None = None, group: str | None = None, show: Callable[[Any], str] | None = None,
        cli: bool = True, default_factory: Callable[[], Any] = _MISSING) -> Any:
    """A dataclass field that is also a command-line argument.

    Args:
        default / default_factory: the one statement of the default (none: a required option or positional).
        help: argparse help; ``{default}`` / ``{default:SPEC}`` is replaced by the default (``show(default)``
            when given). Argparse %-formatting still applies, so a literal percent sign is ``%%``.
        flag: option string(s) when not ``--field-name`` (the dest stays the field name).
        positional: a positional argument named after the field.
        choices, metavar, nargs, action: as in argparse. type: argparse converter (default: from the annotation).
        group: title of the argument group the argument is listed under in ``--help``.
        cli: False for a field the command's own parser does not define (the top-level ``-v`` count, say):
            it is read from the namespace when present there, else left at its default.
    """
    meta = {"help": help, "flag": flag, "positional": positional, "choices": choices, "metavar": metavar,
            "type": type, "nargs": nargs, "action": action, "group": group, "show": show, "cli": cli}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def pixel_count(text: str) -> int:
    """argparse type for a whole number of pixels: ``40000000``, ``40_000_000``, ``40M``, ``2.5m`` or ``500k``
    (decimal: M = 10^6)."""
    m = re.fullmatch(r"\s*\+?(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", text.replace("_", ""))
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()] if m else 0.0
    if not m or value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a pixel count: use e.g. 40000000, 40M or 500k")
    return int(value)


def show_pixels(n: int) -> str:
    """``40000000`` -> ``"40M"``: how `pixel_count` help texts show their default (the plain number when a short
    form would not read back as exactly ``n``)."""
    short = f"{n / 1e6:g}M"
    try:
        return short if pixel_count(short) == n else str(n)
    except argparse.ArgumentTypeError:  # rounded to a fraction of a pixel
        return str(n)


def field_default(f: dataclasses.Field) -> Any:
    """The default of dataclass field ``f`` (a fresh one from its factory); MISSING when it has none."""
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:
        return f.default_factory()
    return _MISSING


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one argument per field of dataclass ``cls`` to ``parser``, in field order."""
    hints = typing.get_type_hints(cls)
    groups: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", True) or not f.init:
            continue
        target: Any = parser
        if meta.get("group"):
            if meta["group"] not in groups:
                groups[meta["group"]] = parser.add_argument_group(meta["group"])
            target = groups[meta["group"]]
        names, kwargs = _argument(f, hints[f.name])
        target.add_argument(*names, **kwargs)


def options_from_args(cls: type[T], ns: argparse.Namespace) -> T:
    """The ``cls`` instance of a parsed namespace: each field from the attribute of the same name (fields the
    namespace lacks keep their defaults)."""
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if f.init and hasattr(ns, f.name)}
    return cls(**values)


def _argument(f: dataclasses.Field, hint: Any) -> tuple[list[str], dict[str, Any]]:
    meta = f.metadata
    default = field_default(f)
    base, is_list = _base_type(hint)
    kwargs: dict[str, Any] = {"help": _help(meta.get("help", ""), default, meta.get("show"))}
    for key in ("choices", "metavar", "nargs"):
        if meta.get(key) is not None:
            kwargs[key] = meta[key]
    action = meta.get("action")
    if action is None and base is bool:
        if default is not False:
            raise TypeError(f"{f.name}: a flag (bool) field must default to False")
        action = "store_true"
    elif action is None and is_list and meta.get("nargs") is None:
        action = "append"
    if action is not None:
        kwargs["action"] = action
    if action not in ("store_true", "store_false", "count"):
        converter = meta.get("type") or (base if base in (int, float, Path) else None)
        if converter is not None:
            kwargs["type"] = converter
    if meta.get("positional"):
        if default is not _MISSING:
            kwargs["default"] = default
        return [f.name], kwargs
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    kwargs["dest"] = f.name
    if default is _MISSING:
        kwargs["required"] = True
    else:
        kwargs["default"] = default
    return [flag] if isinstance(flag, str) else list(flag), kwargs


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(element type, is a list) of an annotation: ``int | None`` -> (int, False), ``list[str]`` -> (str, True)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else hint
    if typing.get_origin(hint) in (list, tuple):
        return typing.get_args(hint)[0], True
    return hint, False


def _help(text: str, default: Any, show: Callable[[Any], str] | None) -> str:
    def fill(m: re.Match) -> str:
        return show(default) if show else format(default, m.group(1) or "")

    return _PLACEHOLDER.sub(fill, text)
