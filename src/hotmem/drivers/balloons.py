"""Hypervisor balloons that hot-add memory: Hyper-V (drivers/hv/hv_balloon.c)
and Xen (drivers/xen/balloon.c).  Both add plain "System RAM" with
MHP_MERGE_RESOURCE, no memory group and never memmap on memory, and both own
an online_page_callback that keeps some pages PageOffline with a reference
they never drop, so a block holding such pages cannot be offlined (EBUSY from
scan_movable_pages).

* Hyper-V: the host hot-adds a region in chunks of a memory block (6.12;
  128 MiB in 6.1) and backs only part of it: hv_online_page() onlines the
  backed pages, the rest stays PageOffline.  ``backed`` (bytes, from the
  region start) is what the host backs; a ``resize`` to more brings the newly
  backed pages online (hv_bring_pgs_online).
* Xen: reserve_additional_memory() adds the region; xen_online_page() puts
  every page into the balloon (PageOffline); the balloon thread then hands
  ``backed`` bytes back to the buddy page by page (increase_reservation),
  taken here in ascending pfn order.

Giving memory back to the host (balloon inflation) is not modelled: a
``resize`` below what is backed is refused with a ConfigError.
"""
from __future__ import annotations

from ..constants import MEM_ONLINE, MHP_MERGE_RESOURCE, P_OFFLINE
from ..errors import ConfigError, HotplugError
from ..memory_hotplug import add_memory, default_add_start
from ..page_alloc import init_per_zone_wmark_min
from ..state import DeviceReport, MachineState
from ..units import parse_size
from .base import Device


class _Balloon(Device):
    keys = ("backed",)
    drops_offline_refs = False

    def configure(self, options: dict[str, object]) -> None:
        super().configure(options)
        self.backed = parse_size(options.get("backed", self.size), "backed")
        if self.backed > self.size:
            raise ConfigError(f"device {self.name}: backed ({self.backed:#x}) is larger than "
                              f"the region ({self.size:#x})")

    def _chunk(self, m: MachineState) -> int:
        return m.block_size

    def attach(self, m: MachineState) -> list[int]:
        if self.start is None:
            self.start = default_add_start(m)
        chunk = self._chunk(m)
        if self.start % m.block_size or chunk % m.block_size:
            raise HotplugError("EINVAL", f"device {self.name}: the region is not memory block "
                               "aligned")
        m.devices[self.name] = self
        added: list[int] = []
        end = self.start + -(-self.size // chunk) * chunk
        for base in range(self.start, end, chunk):
            try:
                blocks = add_memory(m, base, chunk, self.nid, MHP_MERGE_RESOURCE, self.driver,
                                    self.static_group(m, base, chunk))
            except HotplugError as err:
                self.notes.append(f"hot-add at {base:#x} failed: {err}; no more hot-add")
                break
            added += blocks
        if not added:
            m.devices.pop(self.name, None)
            raise HotplugError("ENOMEM", f"device {self.name}: nothing could be hot-added")
        self.attached = True
        return added

    def resize(self, m: MachineState, size: int) -> list[int]:
        if size < self.backed:
            raise ConfigError(f"device {self.name}: giving memory back to the host (balloon "
                              "inflation) is not modelled")
        if size > self.size:
            raise HotplugError("EINVAL", f"device {self.name}: {size:#x} is beyond the region")
        assert self.start is not None
        ps = m.arch.page_shift
        s, e = (self.start + self.backed) >> ps, (self.start + size) >> ps
        self.backed = size
        # pages newly backed in online blocks go to the buddy now
        for blk in range(s // m.pages_per_block, -(-e // m.pages_per_block)):
            if m.blk_state[blk] != MEM_ONLINE:
                continue
            bs, be = m.block_range(blk)
            lo, hi = max(bs, s), min(be, e)
            if lo < hi:
                m.pages.clear(P_OFFLINE, lo, hi)
                m.zones[int(m.blk_zone[blk])].managed_pages += m.pages.free_range(lo, hi)
        init_per_zone_wmark_min(m)
        return []

    def detach(self, m: MachineState) -> list[int]:
        raise HotplugError("EINVAL", f"device {self.name}: the {self.driver} driver never "
                           "hot-removes memory")

    def online_split(self, m: MachineState, blk: int, start: int,
                     end: int) -> tuple[list[tuple[int, int]], bool] | None:
        assert self.start is not None
        limit = (self.start + self.backed) >> m.arch.page_shift
        if limit >= end:
            return None
        return ([(start, limit)] if limit > start else []), False

    def report(self, m: MachineState) -> DeviceReport:
        rep = super().report(m)
        rep["backed_bytes"] = self.backed
        return rep


class HvBalloon(_Balloon):
    """Hyper-V dynamic memory hot-add."""

    driver = "hv-balloon"

    def _chunk(self, m: MachineState) -> int:
        # ha_pages_in_chunk: the memory block size (6.12), HA_CHUNK = 128 MiB before
        return m.block_size if m.kernel.at_least(6, 12) else 128 << 20


class XenBalloon(_Balloon):
    """Xen balloon memory hotplug."""

    driver = "xen-balloon"

    def _chunk(self, m: MachineState) -> int:
        # reserve_additional_memory(): the whole credit, section rounded; add_memory
        # still wants it memory block aligned
        return -(-self.size // m.block_size) * m.block_size
