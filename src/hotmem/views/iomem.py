"""/proc/iomem: the System RAM resources (kernel/resource.c r_show).

Boot memory is one resource per firmware range (e820 on x86); each device a
driver hot-added is its own resource, registered by add_memory_resource()
under the name its driver gives (register_memory_resource): the ACPI DIMM
driver and other add_memory() callers use "System RAM", drivers that use
add_memory_driver_managed() name themselves ("System RAM (virtio_mem)",
"System RAM (kmem)") under a parent of their own (virtioN, daxX.Y): a
device of hotmem/drivers/ lists its resources (Device.iomem).  Other
resources (PCI windows, ROMs, firmware reservations, the kernel image) are
not modelled and not listed.
"""
from __future__ import annotations

import numpy as np

from ..state import MachineState

SYSTEM_RAM = "System RAM"
# MemoryGroup.driver -> resource name (register_memory_resource's resource_name)
RESOURCE_NAMES: dict[str, str] = {
    "acpi": SYSTEM_RAM,              # drivers/acpi/acpi_memhotplug.c: __add_memory()
    "direct": SYSTEM_RAM,            # any add_memory() caller
}


def resource_name(driver: str) -> str:
    return RESOURCE_NAMES.get(driver, SYSTEM_RAM)


def ram_resources(m: MachineState) -> list[tuple[int, int, str, int]]:
    """(start, end inclusive, name, depth) of every System RAM resource and
    the device resources above them (a driver's device says what it
    registers: virtioN or daxX.Y with its System RAM children), by address."""
    ps = m.arch.page_shift
    out: list[tuple[int, int, str, int]] = [(s << ps, (e << ps) - 1, SYSTEM_RAM, 0)
                                            for s, e in m.boot_ranges]
    devices = {id(g.device): g.device for g in m.groups.values() if g.device is not None}
    for dev in devices.values():
        out += dev.iomem(m)
    for g in m.groups.values():
        if g.device is not None:
            continue
        blocks = np.flatnonzero((m.blk_group == g.gid) & (m.blk_state != 0))
        if not len(blocks):
            continue   # removed
        # one resource per add_memory(); a partly removed device keeps its runs
        runs = np.split(blocks, np.flatnonzero(np.diff(blocks) != 1) + 1)
        for run in runs:
            s = int(run[0]) * m.block_size
            e = (int(run[-1]) + 1) * m.block_size - 1
            out.append((s, e, resource_name(g.driver), 0))
    # a parent before its children
    return sorted(out, key=lambda r: (r[0], r[3], -r[1]))


def iomem(m: MachineState) -> str:
    """r_show(): "%*s%0*llx-%0*llx : %s", two spaces of indent per level, width 8
    (iomem_resource ends at -1)."""
    return "".join(f"{'  ' * depth}{s:08x}-{e:08x} : {name}\n"
                   for s, e, name, depth in ram_resources(m))
