"""The driver interface: how memory arrives.

``mhp_flags(m, size)``
    the MHP_* flags the driver passes to add_memory() for a range of ``size``.
``add(m, start, size, nid)``
    add_memory() as the driver calls it; returns the new block ids.
``onlines_itself``
    the driver onlines the blocks it adds, whatever auto_online_blocks says.
``group``
    "static" (one memory group per device, a DIMM) or "dynamic" (a group with
    a unit, grown and shrunk by the driver).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from ..memory_hotplug import add_memory
from ..state import MachineState
from ..units import parse_size


class Driver(ABC):
    """Base of every hot-add driver."""

    name = "driver"
    onlines_itself = False
    group = "static"

    @abstractmethod
    def mhp_flags(self, m: MachineState, size: int) -> int:
        """The MHP_* flags passed to add_memory()."""

    def add(self, m: MachineState, start: int | str | None, size: int | str,
            nid: int = 0) -> list[int]:
        """add_memory() of one device; returns the new memory block ids."""
        nbytes = parse_size(size, "size")
        return add_memory(m, start, nbytes, nid, self.mhp_flags(m, nbytes), self.name)

    def __repr__(self) -> str:
        return f"<driver {self.name}>"
