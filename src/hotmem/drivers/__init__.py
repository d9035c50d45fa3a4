"""Hot-add drivers, as plug-ins: what a driver passes to add_memory(), its
memory group, and whether it onlines the memory itself.

``get(name)`` returns a driver: ``acpi`` (an ACPI memory device, a DIMM: what
``op = "add"`` models) and ``direct`` (a caller that always passes
MHP_MEMMAP_ON_MEMORY) are built in.
"""
from __future__ import annotations

from ..errors import ConfigError
from .acpi_dimm import ACPI_DIMM, DIRECT
from .base import Driver

BUILTIN: dict[str, Driver] = {d.name: d for d in (ACPI_DIMM, DIRECT)}
NAMES = tuple(BUILTIN)

__all__ = ["Driver", "BUILTIN", "NAMES", "get"]


def get(name: str | Driver) -> Driver:
    """The driver called ``name``."""
    if isinstance(name, Driver):
        return name
    if isinstance(name, str) and name in BUILTIN:
        return BUILTIN[name]
    raise ConfigError(f"driver: {str(name)[:40]!r} is not one of {', '.join(NAMES)}")
