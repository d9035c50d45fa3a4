"""The ACPI memory device driver (drivers/acpi/acpi_memhotplug.c,
acpi_memory_enable_device): a DIMM plugged into a slot, one static memory
group per device, auto-onlined only as auto_online_blocks says.

It asks for memmap on memory only when mhp_supports_memmap_on_memory() says
yes, so it never sees the EINVAL an unconditional request gets before 6.6;
``direct`` stands for a caller that always passes MHP_MEMMAP_ON_MEMORY."""
from __future__ import annotations

from ..constants import MHP_MEMMAP_ON_MEMORY, MHP_NID_IS_MGID, MHP_NONE
from ..state import MachineState
from .base import Driver


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
