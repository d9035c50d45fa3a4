"""s390 standby memory (drivers/s390/char/sclp_cmd.c, from 6.19
drivers/s390/char/sclp_mem.c): storage increments the machine can assign to
the LPAR on demand.

* up to 6.18, every standby block is added at boot (``attach``), offline,
  with ``MHP_MEMMAP_ON_MEMORY`` where EDAT1 makes it possible (6.8+; MHP_NONE
  before), silently without it when memmap on memory is not supported; it is
  never removed (``detach`` is EINVAL);
* from 6.19 nothing is added at boot: ``/sys/firmware/memory/memoryN/config``
  adds a block when 1 is written (with the block's ``memmap_on_memory``
  attribute, writable only while the block is not configured: EBUSY, and
  EOPNOTSUPP when memmap on memory is not supported) and removes it when 0
  is written, EBUSY unless the block is offline.  ``attach`` configures every
  standby block of the device, ``detach`` deconfigures them.
"""
from __future__ import annotations

from ..constants import MEM_OFFLINE, MHP_MEMMAP_ON_MEMORY, MHP_NONE
from ..errors import ConfigError, HotplugError
from ..memory_hotplug import (
    add_memory,
    default_add_start,
    mhp_supports_memmap_on_memory,
    remove_memory,
)
from ..state import MachineState
from .base import Device


class SclpStandby(Device):
    """The standby storage increments of an s390 LPAR, as memory blocks."""

    driver = "sclp-standby"
    keys = ("memmap_on_memory",)

    def configure(self, options: dict[str, object]) -> None:
        super().configure(options)
        mom = options.get("memmap_on_memory")
        if mom is not None and not isinstance(mom, bool):
            raise ConfigError(f"device {self.name}: memmap_on_memory must be true or false")
        self.written = mom
        self.configured: dict[int, bool] = {}

    def _supported(self, m: MachineState) -> bool:
        return mhp_supports_memmap_on_memory(m.arch, m.kernel, m.memmap_on_memory,
                                             m.block_size, m.block_size)[0]

    def attach(self, m: MachineState) -> list[int]:
        if m.arch.name != "s390x":
            raise HotplugError("EINVAL", f"device {self.name}: standby memory is s390 only")
        if self.start is None:
            self.start = default_add_start(m)
        mb = m.block_size
        if self.size <= 0 or self.start % mb or self.size % mb:
            raise HotplugError("EINVAL", f"device {self.name}: standby memory is added in "
                               f"whole memory blocks ({mb:#x})")
        blocks = list(range(self.start // mb, (self.start + self.size) // mb))
        per_block = not m.kernel.no_prepare_online_notifier
        if per_block:
            # <= 6.18: sclp_add_standby_memory() at boot; the attribute does not exist
            if self.written is not None:
                raise HotplugError("EINVAL", f"device {self.name}: kernel {m.kernel} has no "
                                   "per-block memmap_on_memory (6.19+)")
            flags = MHP_MEMMAP_ON_MEMORY if m.kernel.at_least(6, 8) else MHP_NONE
        else:
            mom = self._supported(m) if self.written is None else self.written
            if mom and not self._supported(m):
                raise HotplugError("EOPNOTSUPP", f"device {self.name}: memmap_on_memory=1 "
                                   "refused: memmap on memory is not supported here")
            flags = MHP_MEMMAP_ON_MEMORY if mom else MHP_NONE
        m.devices[self.name] = self
        added: list[int] = []
        try:
            for blk in blocks:
                added += add_memory(m, blk * mb, mb, self.nid, flags, self.driver,
                                    self.static_group(m, blk * mb, mb))
                self.configured[blk] = True
        except HotplugError:
            for blk in reversed(added):
                remove_memory(m, blk * mb, mb)
            m.devices.pop(self.name, None)
            raise
        self.attached = True
        return added

    def detach(self, m: MachineState) -> list[int]:
        if not m.kernel.no_prepare_online_notifier:
            raise HotplugError("EINVAL", f"device {self.name}: standby memory is never removed "
                               f"before 6.19 (kernel {m.kernel})")
        mb = m.block_size
        busy = [b for b in self.configured if m.blk_state[b] != MEM_OFFLINE]
        if busy:
            raise HotplugError("EBUSY", f"device {self.name}: echo 0 > /sys/firmware/memory/"
                               f"memory{busy[0]}/config: the block is not offline",
                               block=busy[0])
        removed = sorted(self.configured)
        for blk in removed:
            remove_memory(m, blk * mb, mb)
        self.configured.clear()
        m.devices.pop(self.name, None)
        self.attached = False
        return removed
