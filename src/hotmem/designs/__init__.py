"""Designs of memmap placement for hot-added memory, as plug-ins.

``get(name)`` returns a design: ``mainline`` (the merged memmap on memory),
``none`` (hot-add without it) and ``rfc2018`` (the 2018 RFC) are built in;
``module:attribute`` or ``path/to/file.py:attribute`` loads one written
elsewhere (a patch under review), a subclass or instance of
:class:`hotmem.designs.base.Design`.  See base.py for the interface.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ..errors import ConfigError
from .base import Design
from .mainline import DESIGN as MAINLINE
from .none import DESIGN as NONE
from .rfc2018 import DESIGN as RFC2018

BUILTIN: dict[str, Design] = {d.name: d for d in (NONE, MAINLINE, RFC2018)}
NAMES = tuple(BUILTIN)

__all__ = ["Design", "BUILTIN", "NAMES", "get"]


def _load_module(spec: str) -> object:
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"design: no file {spec[:120]!r}")
        name = f"hotmem_design_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return sys.modules[name]
        loader = importlib.util.spec_from_file_location(name, path)
        if loader is None or loader.loader is None:
            raise ConfigError(f"design: cannot load {spec[:120]!r}")
        mod = importlib.util.module_from_spec(loader)
        sys.modules[name] = mod
        try:
            loader.loader.exec_module(mod)
        except Exception as err:  # the user's file failed to import: say so, briefly
            del sys.modules[name]
            raise ConfigError(f"design: {spec[:120]} failed to load: "
                              f"{type(err).__name__}: {str(err)[:120]}") from None
        return mod
    try:
        return importlib.import_module(spec)
    except ImportError as err:
        raise ConfigError(f"design: cannot import {spec[:120]!r}: {str(err)[:120]}") from None


def get(spec: str | Design, **options: object) -> Design:
    """The design called ``spec`` (a built-in name or ``module:attribute``),
    with its options set."""
    if isinstance(spec, Design):
        return spec.configured(**options)
    if not isinstance(spec, str):
        raise ConfigError(f"design: expected a name, got {type(spec).__name__}")
    if spec in BUILTIN:
        return BUILTIN[spec].configured(**options)
    if ":" not in spec:
        raise ConfigError(f"design: {spec[:60]!r} is not one of {', '.join(NAMES)} "
                          "(or module:attribute)")
    where, _, attr = spec.rpartition(":")
    obj = getattr(_load_module(where), attr, None)
    if isinstance(obj, type) and issubclass(obj, Design):
        obj = obj()
    if not isinstance(obj, Design):
        raise ConfigError(f"design: {spec[:120]} is not a hotmem.designs.base.Design "
                          "(subclass or instance)")
    return obj.configured(**options)
