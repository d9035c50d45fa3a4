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

import numpy as np

from ..constants import MEM_ONLINE, P_OFFLINE
from ..errors import ConfigError, HotplugError
from ..memory_hotplug import add_memory
from ..state import DeviceReport, MachineState, MemoryGroup
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


class Device(ABC):
    """One hot-plug device and its driver's state: what ``[[device]]`` in a
    scenario describes and ``attach`` / ``resize`` / ``detach`` steps drive.

    The core calls the hooks of the device whose memory group a block
    belongs to: ``online_split`` (the driver's online_page_callback),
    ``block_online`` / ``block_offline`` (its memory notifier), and reads
    ``drops_offline_refs`` (whether MEM_GOING_OFFLINE drops the reference of
    its PageOffline pages, so offlining skips them)."""

    driver = "device"
    #: scenario keys this driver takes beyond name, driver, start, size, node
    keys: tuple[str, ...] = ()
    drops_offline_refs = True

    def __init__(self, name: str, start: int | None, size: int, nid: int,
                 options: dict[str, object]) -> None:
        self.name = name
        self.start = start
        self.size = size
        self.nid = nid
        self.attached = False
        self.group: MemoryGroup | None = None
        self.notes: list[str] = []
        self.configure(options)

    def configure(self, options: dict[str, object]) -> None:
        """Take the driver-specific scenario keys (ConfigError on a bad value)."""
        for k in options:
            if k not in self.keys:
                raise ConfigError(f"device {self.name}: {self.driver} takes no key {k!r} "
                                  f"(it takes {', '.join(self.keys) or 'none'})")

    @abstractmethod
    def attach(self, m: MachineState) -> list[int]:
        """The device comes up (bound, plugged, configured); returns the blocks added."""

    def resize(self, m: MachineState, size: int) -> list[int]:
        """A new requested size; returns the blocks added or removed."""
        raise HotplugError("EINVAL", f"device {self.name}: {self.driver} cannot be resized")

    def set(self, m: MachineState, key: str, value: object) -> None:
        """A write to one of the device's sysfs attributes (EINVAL: none here)."""
        raise HotplugError("EINVAL", f"device {self.name}: {self.driver} has no attribute "
                           f"{str(key)[:40]!r}")

    @abstractmethod
    def detach(self, m: MachineState) -> list[int]:
        """The device goes away (unbind, unplug, deconfigure); returns the blocks removed."""

    def static_group(self, m: MachineState, start: int, size: int) -> MemoryGroup:
        """A memory group of one add_memory() call carrying this device's
        hooks (the drivers that register no group of their own: its
        max_pages is the range, as auto-movable sees a group-less range)."""
        ps = m.arch.page_shift
        return MemoryGroup(m.next_gid, self.nid, start >> ps, 0, size >> ps,
                           memmap_on_memory=False, driver=self.driver, device=self)

    # ---- hooks of the core

    def online_split(self, m: MachineState, blk: int, start: int,
                     end: int) -> tuple[list[tuple[int, int]], bool] | None:
        return None

    def block_online(self, m: MachineState, blk: int) -> None:
        return None

    def block_offline(self, m: MachineState, blk: int) -> None:
        return None

    # ---- what reports and exports show

    def blocks(self, m: MachineState) -> list[int]:
        """Present memory blocks of this device."""
        if self.group is None:
            return []
        gid = self.group.gid
        return [int(b) for b in np.flatnonzero((m.blk_state != 0) & (m.blk_group == gid))]

    def iomem(self, m: MachineState) -> list[tuple[int, int, str, int]]:
        """/proc/iomem lines of the device: (start, end inclusive, name, depth)."""
        return [(s, e, "System RAM", 0) for s, e in self._added_runs(m)]

    def _added_runs(self, m: MachineState) -> list[tuple[int, int]]:
        runs: list[tuple[int, int]] = []
        bs = m.block_size
        for b in self.blocks(m):
            if runs and runs[-1][1] + 1 == b * bs:
                runs[-1] = (runs[-1][0], (b + 1) * bs - 1)
            else:
                runs.append((b * bs, (b + 1) * bs - 1))
        return runs

    def report(self, m: MachineState) -> DeviceReport:
        """Per device: plugged size, memory group, blocks, memmap placement,
        PageOffline pages."""
        blocks = self.blocks(m)
        ppb = m.pages_per_block
        offline = sum(m.pages.count(P_OFFLINE, b * ppb, (b + 1) * ppb) for b in blocks
                      if m.blk_state[b] == MEM_ONLINE)
        return {
            "name": self.name, "driver": self.driver, "attached": self.attached,
            "start": self.start, "size_bytes": self.size, "node": self.nid,
            "group": None if self.group is None else self.group.gid,
            "group_kind": None if self.group is None else
            ("dynamic" if self.group.is_dynamic else "static"),
            "plugged_size_bytes": self.plugged_size(m),
            "blocks": blocks,
            "memmap_on_memory_pages": sum(m.nr_vmemmap_pages(b) for b in blocks),
            "memmap_in_other_memory_pages": sum(len(m.memmap_from_buddy.get(b, ()))
                                                for b in blocks),
            "page_offline_pages": offline,
            "notes": list(self.notes),
        }

    def plugged_size(self, m: MachineState) -> int:
        return len(self.blocks(m)) * m.block_size

    def __repr__(self) -> str:
        return f"<{self.driver} device {self.name}>"
