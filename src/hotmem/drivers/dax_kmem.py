"""dax/kmem (drivers/dax/kmem.c, drivers/dax/bus.c): a device-dax instance (a
CXL region, an NVDIMM namespace in devdax mode, soft-reserved "hmem") bound to
kmem becomes System RAM.

* its range is aligned inward to memory blocks (what is cut off is lost; 7.x
  logs "DAX region truncated"); nothing left is EINVAL;
* one static memory group for the device (max_pages = the aligned total);
* ``add_memory_driver_managed(mgid, "System RAM (kmem)", MHP_NID_IS_MGID
  [| MHP_MEMMAP_ON_MEMORY])``, the flag from the device's ``memmap_on_memory``
  attribute (6.8+; default on for CXL, off for PMEM and hmem); writing 1 where
  memmap on memory is not supported is EOPNOTSUPP; with the global parameter
  off a CXL default of 1 falls back silently;
* the blocks come online only through auto-online or user space;
* unbind is remove_memory() per range: with a block still online it fails
  with EBUSY, which the driver only logs ("cannot be hotremoved until the next
  reboot"): the unbind succeeds and the memory stays.
"""
from __future__ import annotations

from ..constants import MEM_ONLINE, MHP_MEMMAP_ON_MEMORY, MHP_NID_IS_MGID
from ..errors import ConfigError, HotplugError
from ..memory_hotplug import (
    add_memory,
    default_add_start,
    mhp_supports_memmap_on_memory,
    remove_memory,
)
from ..state import DeviceReport, MachineState, MemoryGroup
from .base import Device

KINDS = {"pmem": False, "hmem": False, "cxl": True}


class DaxKmem(Device):
    """One dax device bound to kmem."""

    driver = "dax-kmem"
    keys = ("memmap_on_memory", "kind")

    def configure(self, options: dict[str, object]) -> None:
        super().configure(options)
        kind = options.get("kind", "pmem")
        if kind not in KINDS:
            raise ConfigError(f"device {self.name}: kind {str(kind)[:20]!r} is not one of "
                              f"{', '.join(KINDS)}")
        self.kind = str(kind)
        mom = options.get("memmap_on_memory")
        if mom is not None and not isinstance(mom, bool):
            raise ConfigError(f"device {self.name}: memmap_on_memory must be true or false")
        #: the attribute as written by the user (None: the kind's default)
        self.written = mom
        self.memmap_on_memory = KINDS[self.kind] if mom is None else mom
        self.parent_name = "dax0.0"
        self.ranges: list[tuple[int, int]] = []

    def attach(self, m: MachineState) -> list[int]:
        """Write memmap_on_memory (when the scenario sets it), then bind to
        kmem: dev_dax_kmem_probe()."""
        if self.start is None:
            self.start = default_add_start(m)
        if self.written is not None and not m.kernel.at_least(6, 8):
            raise HotplugError("EINVAL", f"device {self.name}: kernel {m.kernel} has no "
                               "memmap_on_memory attribute for dax devices (6.8+)")
        if self.written:
            ok, why = mhp_supports_memmap_on_memory(m.arch, m.kernel, m.memmap_on_memory,
                                                    m.block_size, m.block_size)
            if not ok:
                raise HotplugError("EOPNOTSUPP", f"device {self.name}: write of 1 to "
                                   f"memmap_on_memory refused: {why}")
        if not 0 <= self.nid < m.nr_nodes:
            raise HotplugError("EINVAL", f"device {self.name}: rejecting DAX region with "
                               f"invalid node {self.nid}")
        mb = m.block_size
        s = -(-self.start // mb) * mb
        e = (self.start + self.size) // mb * mb
        if e <= s:
            raise HotplugError("EINVAL", f"device {self.name}: rejecting DAX region without "
                               "any memory after alignment")
        cut = self.size - (e - s)
        if cut and m.kernel.at_least(6, 16):
            self.notes.append(f"DAX region truncated by {cut / (1 << 20):.1f} MiB due to "
                              "alignment")
        self.parent_name = f"dax{sum(isinstance(d, DaxKmem) for d in m.devices.values())}.0"
        pages = (e - s) >> m.arch.page_shift
        self.group = MemoryGroup(m.next_gid, self.nid, s >> m.arch.page_shift, 0, pages,
                                 memmap_on_memory=False, driver=self.driver, device=self)
        flags = MHP_NID_IS_MGID
        if self.memmap_on_memory and m.kernel.at_least(6, 8):
            flags |= MHP_MEMMAP_ON_MEMORY
        blocks = add_memory(m, s, e - s, self.nid, flags, self.driver, self.group)
        self.group.memmap_on_memory = any(m.nr_vmemmap_pages(b) for b in blocks)
        self.ranges = [(s, e)]
        m.devices[self.name] = self
        self.attached = True
        return blocks

    def set(self, m: MachineState, key: str, value: object) -> None:
        """memmap_on_memory_store() (drivers/dax/bus.c, 6.8+): EOPNOTSUPP for 1
        where memmap on memory is not supported, EBUSY for a change while the
        device is bound to kmem."""
        if key != "memmap_on_memory" or not m.kernel.at_least(6, 8):
            super().set(m, key, value)
        if not isinstance(value, bool):
            raise ConfigError(f"device {self.name}: memmap_on_memory must be true or false")
        if value:
            ok, why = mhp_supports_memmap_on_memory(m.arch, m.kernel, m.memmap_on_memory,
                                                    m.block_size, m.block_size)
            if not ok:
                raise HotplugError("EOPNOTSUPP", f"device {self.name}: write of 1 to "
                                   f"memmap_on_memory refused: {why}")
        if self.attached and value != self.memmap_on_memory:
            raise HotplugError("EBUSY", f"device {self.name}: memmap_on_memory cannot change "
                               "while the device is bound to kmem")
        self.written = value
        self.memmap_on_memory = value

    def detach(self, m: MachineState) -> list[int]:
        """dev_dax_kmem_remove(): remove_memory() of each range; a range with a
        block online stays (logged), and the unbind goes through anyway."""
        removed: list[int] = []
        kept: list[tuple[int, int]] = []
        for s, e in self.ranges:
            blocks = list(range(s // m.block_size, e // m.block_size))
            try:
                remove_memory(m, s, e - s)
                removed += blocks
            except HotplugError as err:
                online = [b for b in blocks if m.blk_state[b] == MEM_ONLINE]
                self.notes.append(f"mapping0: {s:#x}-{e - 1:#x} cannot be hotremoved until "
                                  f"the next reboot ({err.errno}: {len(online)} block(s) "
                                  "online)")
                kept.append((s, e))
        self.ranges = kept
        self.attached = False
        if not kept:
            if self.group is not None:
                m.groups.pop(self.group.gid, None)
            m.devices.pop(self.name, None)
        return removed

    def iomem(self, m: MachineState) -> list[tuple[int, int, str, int]]:
        out: list[tuple[int, int, str, int]] = []
        for s, e in self.ranges:
            out.append((s, e - 1, self.parent_name, 0))
            out.append((s, e - 1, "System RAM (kmem)", 1))
        return out

    def report(self, m: MachineState) -> DeviceReport:
        rep = super().report(m)
        rep["kind"] = self.kind
        rep["memmap_on_memory_attribute"] = self.memmap_on_memory
        rep["bound"] = self.attached
        return rep
