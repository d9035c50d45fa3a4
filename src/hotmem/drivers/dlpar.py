"""pseries DLPAR (arch/powerpc/platforms/pseries/hotplug-memory.c): a DIMM
that QEMU or the HMC adds to a POWER LPAR arrives as LMBs, one memory block
each, added by the kernel itself.

* add (dlpar_add_lmb, one LMB at a time, ascending): ``__add_memory(nid,
  base, block, MHP_MEMMAP_ON_MEMORY)`` from 6.6 (MHP_NONE before; memmap on
  memory only with the radix MMU, falling back silently), then
  dlpar_online_lmb(): device_online() of a block still offline, i.e. the
  default zone (MMOP_ONLINE); a block auto-onlined keeps its zone.  A failed
  LMB removes the ones added before and the request fails with EINVAL.
* remove of the DIMM (by index and count): every LMB offlined (its error, such
  as EBUSY, stops the walk) and removed; on a failure the LMBs removed so far
  are added and onlined again, and that error is returned.
"""
from __future__ import annotations

from ..constants import MEM_OFFLINE, MEM_ONLINE, MHP_MEMMAP_ON_MEMORY, MHP_NONE
from ..errors import HotplugError
from ..memory_hotplug import (
    add_memory,
    default_add_start,
    offline_block,
    online_block,
    remove_memory,
)
from ..state import MachineState
from .base import Device


class Dlpar(Device):
    """A pseries memory DIMM, as LMBs."""

    driver = "dlpar"

    def attach(self, m: MachineState) -> list[int]:
        if not m.arch.name.startswith("ppc64"):
            raise HotplugError("EINVAL", f"device {self.name}: DLPAR is pseries (ppc64) only")
        if self.start is None:
            self.start = default_add_start(m)
        mb = m.block_size
        if self.size <= 0 or self.size % mb or self.start % mb:
            raise HotplugError("EINVAL", f"device {self.name}: not a whole number of LMBs "
                               f"({mb:#x})")
        flags = MHP_MEMMAP_ON_MEMORY if m.kernel.at_least(6, 6) else MHP_NONE
        added: list[int] = []
        m.devices[self.name] = self
        try:
            for base in range(self.start, self.start + self.size, mb):
                [blk] = add_memory(m, base, mb, self.nid, flags, self.driver,
                                   self.static_group(m, base, mb))
                added.append(blk)
                if m.blk_state[blk] == MEM_OFFLINE:
                    online_block(m, blk, "online")   # dlpar_online_lmb()
        except HotplugError as err:
            for blk in reversed(added):
                if m.blk_state[blk] == MEM_ONLINE:
                    offline_block(m, blk)
                remove_memory(m, blk * mb, mb)
            m.devices.pop(self.name, None)
            raise HotplugError("EINVAL", f"device {self.name}: LMB add failed ({err}); "
                               f"{len(added)} LMB(s) added before were removed again") from None
        self.attached = True
        return added

    def detach(self, m: MachineState) -> list[int]:
        """dlpar_memory_remove_by_ic(): all LMBs of the DIMM or none."""
        assert self.start is not None
        mb = m.block_size
        removed: list[tuple[int, str]] = []
        for base in range(self.start, self.start + self.size, mb):
            blk = base // mb
            if not m.blk_state[blk]:
                continue
            try:
                was = m.blk_zone[blk]
                kind = ("online_movable" if was >= 0 and m.zones[int(was)].name == "Movable"
                        else "online")
                if m.blk_state[blk] == MEM_ONLINE:
                    offline_block(m, blk)
                remove_memory(m, base, mb)
                removed.append((blk, kind))
            except HotplugError as err:
                # "Memory indexed-count-remove failed, adding any removed LMBs"
                flags = MHP_MEMMAP_ON_MEMORY if m.kernel.at_least(6, 6) else MHP_NONE
                for b, _ in removed:
                    [nb] = add_memory(m, b * mb, mb, self.nid, flags, self.driver,
                                      self.static_group(m, b * mb, mb))
                    if m.blk_state[nb] == MEM_OFFLINE:
                        online_block(m, nb, "online")
                raise err
        m.devices.pop(self.name, None)
        self.attached = False
        return [b for b, _ in removed]
