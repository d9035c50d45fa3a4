"""The ACPI memory device driver (drivers/acpi/acpi_memhotplug.c,
acpi_memory_enable_device): a DIMM plugged into a slot, one static memory
group per device, auto-onlined only as auto_online_blocks says.

It asks for memmap on memory only when mhp_supports_memmap_on_memory() says
yes, so it never sees the EINVAL an unconditional request gets before 6.6;
``direct`` stands for a caller that always passes MHP_MEMMAP_ON_MEMORY."""
from __future__ import annotations

from ..constants import MHP_MEMMAP_ON_MEMORY, MHP_NID_IS_MGID, MHP_NONE
from ..memory_hotplug import remove_memory
from ..state import MachineState
from .base import Device, Driver


class AcpiDimm(Driver):
    """acpi_memory_enable_device() -> __add_memory()."""

    name = "acpi"

    def mhp_flags(self, m: MachineState, size: int) -> int:
        supported, _ = m.design.verdict(m, size)
        return MHP_NID_IS_MGID | (MHP_MEMMAP_ON_MEMORY if supported else MHP_NONE)


class Direct(Driver):
    """A caller of add_memory() that always passes MHP_MEMMAP_ON_MEMORY."""

    name = "direct"

    def mhp_flags(self, m: MachineState, size: int) -> int:
        return MHP_MEMMAP_ON_MEMORY


ACPI_DIMM = AcpiDimm()
DIRECT = Direct()


class AcpiDimmDevice(Device):
    """A DIMM as a ``[[device]]``: attach = plugged (add_memory through the
    ACPI driver), detach = ACPI eject (try_remove_memory: EBUSY while a block
    is online)."""

    driver = "acpi-dimm"

    def attach(self, m: MachineState) -> list[int]:
        blocks = ACPI_DIMM.add(m, self.start, self.size, self.nid)
        self.start = blocks[0] * m.block_size
        self.group = m.group_of_block(blocks[0])
        m.devices[self.name] = self
        self.attached = True
        return blocks

    def detach(self, m: MachineState) -> list[int]:
        assert self.start is not None
        blocks = self.blocks(m)
        remove_memory(m, self.start, self.size)
        m.devices.pop(self.name, None)
        self.attached = False
        return blocks
