"""virtio-mem (drivers/virtio/virtio_mem.c): a device region plugged and
unplugged in device blocks, memory added one memory block at a time (Sub
Block Mode) or one big block at a time (Big Block Mode), never with memmap on
memory, into one dynamic memory group.

What hotmem models, with the kernel's rules (docs/drivers.md §2):

* sizes: ``sb_size = max(pageblock, device block)``; SBM when sb_size is below
  the memory block size and ``force_bbm`` is off, else BBM with
  ``bb_size = max(device block, memory block)`` (or ``bbm_block_size``);
  ``offline_threshold = max(2 * memory block, 1 GiB)`` (BBM: and 2 * bb_size).
* plug (SBM): partially plugged blocks first (kernel, movable, offline;
  ascending), then unused blocks, then new ones, each with
  ``add_memory_driver_managed(MHP_MERGE_RESOURCE | MHP_NID_IS_MGID)``;
  ENOSPC when the memory added but still offline would pass the threshold.
* the online-page callback hands plugged subblocks to the buddy and keeps
  unplugged ones PageOffline with PG_dirty (present, not managed).
* unplug (SBM): offline blocks first, then online ones, highest id first; a
  whole fully plugged block in one alloc_contig_range when enough is asked,
  else subblock by subblock from the top; a block left with nothing plugged
  goes through offline_and_remove_memory().  Unplugged pages of online
  blocks are PageOffline (taken by alloc_contig_range).
* MEM_GOING_OFFLINE drops the references of PageOffline pages, so an offline
  skips them; MEM_ONLINE requeues the work when the offline memory went down
  by half the threshold.

A ``resize`` runs the work function until it returns: 0, or the errno it
stops with (ENOSPC: no timer; EBUSY, ENOMEM: the retry timer, which a
scenario models by another ``resize``).  What the work did before it stopped
stays done, as in the kernel.
"""
from __future__ import annotations

import numpy as np

from ..constants import (
    MEM_OFFLINE,
    MEM_ONLINE,
    MHP_MERGE_RESOURCE,
    MHP_NID_IS_MGID,
    P_DIRTY,
    P_OFFLINE,
    ZONE_MOVABLE,
    GiB,
)
from ..errors import ConfigError, HotplugError
from ..memory_hotplug import add_memory, default_add_start, offline_and_remove_memory, remove_memory
from ..page_alloc import adjust_managed_page_count, alloc_contig_range
from ..state import DeviceReport, MachineState, MemoryGroup
from ..units import parse_size
from .base import Device

# SBM memory block states, in the order the unplug visits them
OFFLINE_PARTIAL, OFFLINE, MOVABLE_PARTIAL, KERNEL_PARTIAL, MOVABLE, KERNEL = (
    "offline_partial", "offline", "movable_partial", "kernel_partial", "movable", "kernel")
UNUSED = "unused"
PLUG_ORDER = (KERNEL_PARTIAL, MOVABLE_PARTIAL, OFFLINE_PARTIAL)
UNPLUG_ORDER = (OFFLINE_PARTIAL, OFFLINE, MOVABLE_PARTIAL, KERNEL_PARTIAL, MOVABLE, KERNEL)
# BBM big block states
BB_ADDED, BB_FAKE_OFFLINE = "added", "fake_offline"


class VirtioMem(Device):
    """One virtio-mem-pci device."""

    driver = "virtio-mem"
    keys = ("block_size", "requested_size", "force_bbm", "bbm_block_size", "unplug_online")

    def configure(self, options: dict[str, object]) -> None:
        super().configure(options)
        self.device_block_size = parse_size(options.get("block_size", "2M"), "block_size")
        if self.device_block_size <= 0 or self.device_block_size & (self.device_block_size - 1):
            raise ConfigError(f"device {self.name}: block_size must be a power of two")
        self.requested_size = parse_size(options.get("requested_size", 0), "requested_size")
        self.force_bbm = bool(options.get("force_bbm", False))
        self.bbm_block_size = parse_size(options.get("bbm_block_size", 0), "bbm_block_size")
        self.unplug_online = bool(options.get("unplug_online", True))
        for k in ("force_bbm", "unplug_online"):
            if k in options and not isinstance(options[k], bool):
                raise ConfigError(f"device {self.name}: {k} must be true or false")
        self.plugged = 0
        self.offline_size = 0
        self.last_rc: str | None = None
        self.parent_name = "virtio"

    # ------------------------------------------------------------ probe

    def attach(self, m: MachineState) -> list[int]:
        """virtio_mem_probe(): sizes, the dynamic memory group, the parent
        resource; then the work function plugs the requested size."""
        mb = m.block_size
        if self.start is None:
            self.start = default_add_start(m)
        if self.size <= 0 or self.start % self.device_block_size \
                or self.size % self.device_block_size:
            raise HotplugError("EINVAL", f"device {self.name}: region [{self.start:#x}, "
                               f"+{self.size:#x}) is not device-block aligned")
        if self.start + self.size > m.max_phys:
            raise HotplugError("E2BIG", f"device {self.name}: region ends beyond "
                               f"{m.max_phys:#x}")
        for other in m.devices.values():
            if other is not self and isinstance(other, Device) and other.start is not None \
                    and other.start < self.start + self.size \
                    and self.start < other.start + other.size:
                raise HotplugError("EBUSY", f"device {self.name}: could not reserve device "
                                   f"region (overlaps {other.name})")
        pb_bytes = m.arch.pageblock_nr_pages << m.arch.page_shift
        self.sb_size = max(pb_bytes, self.device_block_size)
        self.sbm = self.sb_size < mb and not self.force_bbm
        self.offline_threshold = max(2 * mb, 1 * GiB)
        if self.sbm:
            self.sbs_per_mb = mb // self.sb_size
            self.first_id = -(-self.start // mb)
            self.unit = mb
        else:
            bb = max(self.device_block_size, mb)
            if self.bbm_block_size:
                if self.bbm_block_size & (self.bbm_block_size - 1) or self.bbm_block_size < bb:
                    self.notes.append(f"bbm_block_size {self.bbm_block_size:#x} ignored "
                                      "(not a power of 2, or too small)")
                else:
                    bb = self.bbm_block_size
            self.unit = bb
            self.first_id = -(-self.start // bb)
            self.offline_threshold = max(2 * bb, self.offline_threshold)
        self.last_id = (self.start + self.size) // self.unit - 1
        self.next_id = self.first_id
        self.state: dict[int, str] = {}
        self.members: dict[str, set[int]] = {}
        self.sb_plugged: dict[int, np.ndarray] = {}
        # memory_group_register_dynamic(nid, unit_pages)
        pages = self.unit >> m.arch.page_shift
        self.group = MemoryGroup(m.next_gid, self.nid, self.start >> m.arch.page_shift, 0, 0,
                                 memmap_on_memory=False, driver=self.driver, unit_pages=pages,
                                 device=self)
        m.groups[self.group.gid] = self.group
        m.next_gid += 1
        self.parent_name = f"virtio{sum(isinstance(d, VirtioMem) for d in m.devices.values())}"
        m.devices[self.name] = self
        self.attached = True
        return self._work(m)

    def detach(self, m: MachineState) -> list[int]:
        """Unplug everything (requested size 0), then the device goes away;
        EBUSY while memory stays plugged."""
        self.requested_size = 0
        removed = self._work(m)
        if self.plugged:
            raise HotplugError("EBUSY", f"device {self.name}: {self.plugged:#x} bytes still "
                               "plugged; the device stays")
        if self.group is not None:
            m.groups.pop(self.group.gid, None)
        m.devices.pop(self.name, None)
        self.attached = False
        return removed

    def resize(self, m: MachineState, size: int) -> list[int]:
        """A new requested-size; the work function plugs or unplugs toward it."""
        if size < 0 or size > self.size:
            raise HotplugError("EINVAL", f"device {self.name}: requested size {size:#x} outside "
                               f"the region ({self.size:#x})")
        self.requested_size = size
        return self._work(m)

    # ------------------------------------------------------------ the work function

    def _work(self, m: MachineState) -> list[int]:
        """virtio_mem_run_wq(): plug or unplug toward requested_size; the
        blocks added or removed, or the errno the work stopped with."""
        before = set(self.blocks(m))
        self._busy = True
        try:
            diff = self.requested_size - self.plugged
            rc = None
            if diff > 0:
                rc = self._plug_sbm(m, diff) if self.sbm else self._plug_bbm(m, diff)
            elif diff < 0:
                rc = self._unplug_sbm(m, -diff) if self.sbm else self._unplug_bbm(m, -diff)
        finally:
            self._busy = False
        self.last_rc = rc.errno if rc is not None else None
        after = set(self.blocks(m))
        if rc is not None:
            raise rc
        return sorted(after ^ before)

    def _could_add(self, size: int) -> bool:
        return self.offline_size + size <= self.offline_threshold

    def _add(self, m: MachineState, first_blk: int, nblocks: int) -> None:
        """add_memory_driver_managed() of whole memory blocks (auto-onlined
        as auto_online_blocks says; the notifier keeps offline_size)."""
        size = nblocks * m.block_size
        self.offline_size += size
        try:
            add_memory(m, first_blk * m.block_size, size, self.nid,
                       MHP_MERGE_RESOURCE | MHP_NID_IS_MGID, self.driver, self.group)
        except HotplugError:
            self.offline_size -= size
            raise

    def _mark(self, block_id: int, st: str) -> None:
        """Set the state of a memory (SBM) or big (BBM) block."""
        old = self.state.get(block_id)
        if old is not None:
            self.members[old].discard(block_id)
        self.state[block_id] = st
        self.members.setdefault(st, set()).add(block_id)

    def _in_state(self, st: str, reverse: bool = False) -> list[int]:
        return sorted(self.members.get(st, ()), reverse=reverse)

    # ---- SBM

    def _sb_range(self, m: MachineState, mb_id: int, first_sb: int, n: int) -> tuple[int, int]:
        sb_pages = self.sb_size >> m.arch.page_shift
        s = mb_id * m.pages_per_block + first_sb * sb_pages
        return s, s + n * sb_pages

    def _online_zone_state(self, m: MachineState, mb_id: int) -> str:
        zid = int(m.blk_zone[mb_id])
        movable = zid >= 0 and m.zones[zid].ztype == ZONE_MOVABLE
        return MOVABLE if movable else KERNEL

    def _set_state(self, m: MachineState, mb_id: int) -> None:
        plugged = self.sb_plugged[mb_id]
        full = bool(plugged.all())
        if m.blk_state[mb_id] == MEM_ONLINE:
            base = self._online_zone_state(m, mb_id)
        else:
            base = OFFLINE
        self._mark(mb_id, base if full else base + "_partial")

    def _plug_sbm(self, m: MachineState, diff: int) -> HotplugError | None:
        nb_sb = diff // self.sb_size
        # 1. partially plugged blocks already added
        for st in PLUG_ORDER:
            for mb_id in self._in_state(st):
                if not nb_sb:
                    return None
                nb_sb = self._plug_any_sb(m, mb_id, nb_sb)
        # 2. unused blocks (removed before), then 3. new blocks, ascending
        while nb_sb:
            unused = self.members.get(UNUSED)
            if unused:
                mb_id = min(unused)
            elif self.next_id <= self.last_id:
                mb_id = self.next_id
            else:
                return HotplugError("ENOSPC", f"device {self.name}: the device region is used "
                                    "up", block=None)
            if not self._could_add(m.block_size):
                return HotplugError("ENOSPC", f"device {self.name}: {self.offline_size >> 20} MiB "
                                    "added but offline; adding more would pass the "
                                    f"offline_threshold ({self.offline_threshold >> 20} MiB)")
            count = min(nb_sb, self.sbs_per_mb)
            plugged = np.zeros(self.sbs_per_mb, dtype=bool)
            plugged[:count] = True
            self.sb_plugged[mb_id] = plugged
            self._mark(mb_id, OFFLINE if count == self.sbs_per_mb else OFFLINE_PARTIAL)
            if mb_id == self.next_id:
                self.next_id += 1
            self.plugged += count * self.sb_size
            try:
                self._add(m, mb_id, 1)
            except HotplugError as err:
                # unplug again: the block stays unused
                self.plugged -= count * self.sb_size
                self._mark(mb_id, UNUSED)
                self.sb_plugged[mb_id][:] = False
                return err
            nb_sb -= count
        return None

    def _plug_any_sb(self, m: MachineState, mb_id: int, nb_sb: int) -> int:
        """Plug the lowest unplugged subblocks of an added block; an online
        block gets the pages through fake online."""
        plugged = self.sb_plugged[mb_id]
        while nb_sb and not plugged.all():
            first = int(np.flatnonzero(~plugged)[0])
            run = first
            while run < self.sbs_per_mb and not plugged[run] and run - first < nb_sb:
                run += 1
            n = run - first
            plugged[first:run] = True
            self.plugged += n * self.sb_size
            nb_sb -= n
            if m.blk_state[mb_id] == MEM_ONLINE:
                self._fake_online(m, mb_id, *self._sb_range(m, mb_id, first, n))
        self._set_state(m, mb_id)
        return nb_sb

    def _fake_online(self, m: MachineState, blk: int, s: int, e: int) -> None:
        """virtio_mem_fake_online(): PageOffline pages (never onlined, or taken
        by alloc_contig_range) go to the buddy and become managed again.
        adjust_managed_page_count() leaves the watermarks alone: they follow
        at the next online_pages() / offline_pages() (the captures show them
        unchanged from 506M to 512M)."""
        p = m.pages
        p.clear(P_OFFLINE, s, e)
        p.clear(P_DIRTY, s, e)
        adjust_managed_page_count(m, m.zones[int(m.blk_zone[blk])], p.free_range(s, e))

    def _fake_offline(self, m: MachineState, blk: int, s: int, e: int) -> HotplugError | None:
        """virtio_mem_fake_offline(): alloc_contig_range() (tried five times in
        ZONE_MOVABLE, once elsewhere: the outcome is the same here), then the
        pages are PageOffline and leave managed."""
        err = alloc_contig_range(m, s, e)
        if err is not None:
            return err if err.errno == "ENOMEM" else HotplugError(
                "EBUSY", f"device {self.name}: cannot unplug [{s:#x}, {e:#x}): {err.message}",
                pfn=err.pfn, block=blk)
        m.pages.set(P_OFFLINE, s, e)
        adjust_managed_page_count(m, m.zones[int(m.blk_zone[blk])], -(e - s))
        return None

    def _unplug_sbm(self, m: MachineState, diff: int) -> HotplugError | None:
        nb_sb = diff // self.sb_size
        busy = False
        for st in UNPLUG_ORDER:
            if st in (MOVABLE_PARTIAL, KERNEL_PARTIAL, MOVABLE, KERNEL) and not self.unplug_online:
                break
            for mb_id in self._in_state(st, reverse=True):
                if not nb_sb:
                    return None
                if self.state[mb_id] != st:
                    continue
                if st in (OFFLINE, OFFLINE_PARTIAL):
                    nb_sb = self._unplug_offline(m, mb_id, nb_sb)
                else:
                    nb_sb, err = self._unplug_online(m, mb_id, nb_sb)
                    if err is not None:
                        if err.errno != "EBUSY":
                            return err
                        busy = True
        if nb_sb or busy:
            return HotplugError("EBUSY", f"device {self.name}: {nb_sb} subblocks could not be "
                                "unplugged (unmovable pages); the driver retries on a timer")
        return None

    def _unplug_offline(self, m: MachineState, mb_id: int, nb_sb: int) -> int:
        plugged = self.sb_plugged[mb_id]
        for sb in range(self.sbs_per_mb - 1, -1, -1):
            if not nb_sb:
                break
            if plugged[sb]:
                plugged[sb] = False
                self.plugged -= self.sb_size
                nb_sb -= 1
        if not plugged.any():
            self._mark(mb_id, UNUSED)
            remove_memory(m, mb_id * m.block_size, m.block_size)
            self.offline_size -= m.block_size
        else:
            self._mark(mb_id, OFFLINE_PARTIAL)
        return nb_sb

    def _unplug_online(self, m: MachineState,
                       mb_id: int, nb_sb: int) -> tuple[int, HotplugError | None]:
        plugged = self.sb_plugged[mb_id]
        err: HotplugError | None = None
        done = False
        if nb_sb >= self.sbs_per_mb and plugged.all():
            s, e = self._sb_range(m, mb_id, 0, self.sbs_per_mb)
            err = self._fake_offline(m, mb_id, s, e)
            if err is None:
                plugged[:] = False
                self.plugged -= self.sbs_per_mb * self.sb_size
                nb_sb -= self.sbs_per_mb
                done = True
            elif err.errno != "EBUSY":
                return nb_sb, err
        if not done:
            err = None
            for sb in range(self.sbs_per_mb - 1, -1, -1):
                if not nb_sb:
                    break
                if not plugged[sb]:
                    continue
                e2 = self._fake_offline(m, mb_id, *self._sb_range(m, mb_id, sb, 1))
                if e2 is None:
                    plugged[sb] = False
                    self.plugged -= self.sb_size
                    nb_sb -= 1
                elif e2.errno == "EBUSY":
                    err = e2
                else:
                    return nb_sb, e2
        self._set_state(m, mb_id)
        if not plugged.any():
            # try_remove_unplugged_mb(): offline_and_remove_memory()
            try:
                offline_and_remove_memory(m, mb_id * m.block_size, m.block_size)
                self.offline_size -= m.block_size
                self._mark(mb_id, UNUSED)
            except HotplugError as e3:
                self.notes.append(f"memory{mb_id} fully unplugged but not removed: {e3}")
                return nb_sb, HotplugError("EBUSY", str(e3), block=mb_id)
        return nb_sb, err

    # ---- BBM

    def _plug_bbm(self, m: MachineState, diff: int) -> HotplugError | None:
        nb_bb = diff // self.unit
        per = self.unit // m.block_size
        while nb_bb:
            unused = self.members.get(UNUSED)
            if unused:
                bb_id = min(unused)
            elif self.next_id <= self.last_id:
                bb_id = self.next_id
            else:
                return HotplugError("ENOSPC", f"device {self.name}: the device region is used up")
            if not self._could_add(self.unit):
                return HotplugError("ENOSPC", f"device {self.name}: {self.offline_size >> 20} MiB "
                                    "added but offline; adding more would pass the "
                                    f"offline_threshold ({self.offline_threshold >> 20} MiB)")
            self._mark(bb_id, BB_ADDED)
            if bb_id == self.next_id:
                self.next_id += 1
            self.plugged += self.unit
            try:
                self._add(m, bb_id * per, per)
            except HotplugError as err:
                self.plugged -= self.unit
                self._mark(bb_id, UNUSED)
                return err
            nb_bb -= 1
        return None

    def _unplug_bbm(self, m: MachineState, diff: int) -> HotplugError | None:
        nb_bb = diff // self.unit
        per = self.unit // m.block_size
        busy = False
        for pass_ in range(3):
            for bb_id in self._in_state(BB_ADDED, reverse=True):
                if not nb_bb:
                    return None
                blks = range(bb_id * per, (bb_id + 1) * per)
                states = [int(m.blk_state[b]) for b in blks]
                if pass_ == 0 and any(s == MEM_ONLINE for s in states):
                    continue
                if pass_ == 1 and any(m.blk_state[b] == MEM_ONLINE and
                                      self._online_zone_state(m, b) != MOVABLE for b in blks):
                    continue
                err = self._offline_remove_and_unplug_bb(m, bb_id, per)
                if err is None:
                    nb_bb -= 1
                elif err.errno == "EBUSY":
                    busy = True
                else:
                    return err
        if nb_bb or busy:
            return HotplugError("EBUSY", f"device {self.name}: {nb_bb} big blocks could not be "
                                "unplugged; the driver retries on a timer")
        return None

    def _offline_remove_and_unplug_bb(self, m: MachineState, bb_id: int,
                                      per: int) -> HotplugError | None:
        self._mark(bb_id, BB_FAKE_OFFLINE)
        taken: list[tuple[int, int, int]] = []
        pps = m.arch.pages_per_section
        err: HotplugError | None = None
        for b in range(bb_id * per, (bb_id + 1) * per):
            if m.blk_state[b] != MEM_ONLINE:
                continue
            s0, e0 = m.block_range(b)
            for s in range(s0, e0, pps):
                err = self._fake_offline(m, b, s, s + pps)
                if err is not None:
                    break
                taken.append((b, s, s + pps))
            if err is not None:
                break
        if err is None:
            try:
                offline_and_remove_memory(m, bb_id * self.unit, self.unit)
                self.offline_size -= self.unit
            except HotplugError as e2:
                err = e2
        if err is not None:
            for b, s, e in taken:
                if m.blk_state[b] == MEM_ONLINE:
                    self._fake_online(m, b, s, e)
            self._mark(bb_id, BB_ADDED)
            return err
        self._mark(bb_id, UNUSED)
        self.plugged -= self.unit
        return None

    # ------------------------------------------------------------ hooks

    def online_split(self, m: MachineState, blk: int, start: int,
                     end: int) -> tuple[list[tuple[int, int]], bool] | None:
        """virtio_mem_online_page(): plugged subblocks to the buddy, the rest
        stays PageOffline with PG_dirty; BBM: all of it, unless the big block
        is being fake-offlined."""
        if not self.sbm:
            per = self.unit // m.block_size
            if self.state.get(blk // per) == BB_FAKE_OFFLINE:
                return [], True
            return None
        plugged = self.sb_plugged.get(blk)
        if plugged is None or plugged.all():
            return None
        out: list[tuple[int, int]] = []
        for sb in np.flatnonzero(plugged).tolist():
            s, e = self._sb_range(m, blk, sb, 1)
            if out and out[-1][1] == s:
                out[-1] = (out[-1][0], e)
            else:
                out.append((s, e))
        return [(max(s, start), min(e, end)) for s, e in out if e > start and s < end], True

    def block_online(self, m: MachineState, blk: int) -> None:
        """MEM_ONLINE: the block's state follows its zone; offline memory went
        down, which may let a stopped plug go on."""
        self.offline_size -= m.block_size
        if self.sbm and blk in self.sb_plugged:
            self._set_state(m, blk)
        if (not getattr(self, "_busy", False) and self.last_rc == "ENOSPC"
                and self.offline_size + self.offline_threshold // 2 <= self.offline_threshold
                and self.requested_size > self.plugged):
            try:
                self._work(m)
            except HotplugError:
                pass   # last_rc keeps what the requeued work ended with

    def block_offline(self, m: MachineState, blk: int) -> None:
        """MEM_OFFLINE: back to an offline state."""
        self.offline_size += m.block_size
        if self.sbm and blk in self.sb_plugged:
            self._set_state(m, blk)

    # ------------------------------------------------------------ reports

    def plugged_size(self, m: MachineState) -> int:
        return self.plugged

    def iomem(self, m: MachineState) -> list[tuple[int, int, str, int]]:
        assert self.start is not None
        out = [(self.start, self.start + self.size - 1, self.parent_name, 0)]
        out += [(s, e, "System RAM (virtio_mem)", 1) for s, e in self._added_runs(m)]
        return out

    def report(self, m: MachineState) -> DeviceReport:
        rep = super().report(m)
        rep["requested_size_bytes"] = self.requested_size
        if self.sbm:
            rep["mode"] = "sbm"
            rep["subblock_size_bytes"] = self.sb_size
        else:
            rep["mode"] = "bbm"
            rep["big_block_size_bytes"] = self.unit
        rep["offline_threshold_bytes"] = self.offline_threshold
        rep["offline_size_bytes"] = self.offline_size
        rep["block_states"] = {str(b): s for b, s in sorted(self.state.items())}
        rep["last_result"] = self.last_rc or "ok"
        return rep


__all__ = ["VirtioMem", "MEM_OFFLINE"]
