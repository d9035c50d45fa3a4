"""/sys/devices/system/node and the memory block <-> node links, and
/sys/module/memory_hotplug/parameters (drivers/base/node.c,
drivers/base/memory.c, mm/memory_hotplug.c).

A node directory exists for every online node; ``memoryN/nodeM`` and
``nodeM/memoryN`` link every present block to its node
(register_memory_block_under_node).  ``has_memory`` is N_MEMORY (nodes with
present pages), ``has_normal_memory`` N_NORMAL_MEMORY (present pages in a
zone up to ZONE_NORMAL: Movable-only nodes are left out).  numastat counts
are not modelled: 0.
"""
from __future__ import annotations

from ..constants import ZONE_NORMAL
from ..state import MachineState
from .meminfo import node_meminfo
from .procfs import online_nodes


class Symlink(str):
    """A file of the tree that is a symlink to this (relative) target."""


def nodelist(nids: list[int]) -> str:
    """bitmap_print_to_pagebuf(true, ...): "0-2,5"."""
    parts: list[str] = []
    run: list[int] = []
    for n in sorted(nids):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}")
        run = [n]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}")
    return ",".join(parts) + "\n"


def node_masks(m: MachineState) -> dict[str, list[int]]:
    nodes = online_nodes(m)
    memory = [n for n in nodes if any(z.present_pages for z in m.zones if z.nid == n)]
    normal = [n for n in nodes if any(z.present_pages for z in m.zones
                                      if z.nid == n and z.ztype <= ZONE_NORMAL)]
    return {"possible": list(range(m.nr_nodes)), "online": nodes,
            "has_memory": memory, "has_normal_memory": normal}


def numastat() -> str:
    return "".join(f"{k} 0\n" for k in ("numa_hit", "numa_miss", "numa_foreign",
                                         "interleave_hit", "local_node", "other_node"))


def node_tree(m: MachineState) -> dict[str, str]:
    """Files under /sys/devices/system/node, path -> contents (Symlink for links)."""
    files: dict[str, str] = {name: nodelist(nids) for name, nids in node_masks(m).items()}
    for nid in online_nodes(m):
        files[f"node{nid}/meminfo"] = node_meminfo(m, nid)
        files[f"node{nid}/numastat"] = numastat()
    for blk in m.present_blocks():
        b, nid = int(blk), int(m.blk_nid[blk])
        files[f"node{nid}/memory{b}"] = Symlink(f"../../memory/memory{b}")
    return files


def block_node_links(m: MachineState) -> dict[str, str]:
    """memoryN/nodeM under /sys/devices/system/memory."""
    return {f"memory{int(b)}/node{int(m.blk_nid[b])}":
            Symlink(f"../../node/node{int(m.blk_nid[b])}") for b in m.present_blocks()}


# QEMU's ACPI memory devices: \\_SB.MHPC (PNP0A06) holds one PNP0C80 per slot
ACPI_MEMORY_DEVICES = "../../../LNXSYSTM:00/LNXSYBUS:00/PNP0A06:00"


def firmware_nodes(m: MachineState) -> dict[str, str]:
    """memoryN/firmware_node of the blocks an ACPI memory device added:
    acpi_bind_memory_blocks() binds each block to its PNP0C80 device
    (acpi_bind_one creates the link); one device per memory group."""
    out: dict[str, str] = {}
    for blk in m.present_blocks():
        g = m.group_of_block(int(blk))
        if g is not None and g.driver == "acpi":
            out[f"memory{int(blk)}/firmware_node"] = Symlink(
                f"{ACPI_MEMORY_DEVICES}/PNP0C80:{g.gid:02x}")
    return out


def module_parameters(m: MachineState) -> dict[str, str]:
    """/sys/module/memory_hotplug/parameters: memmap_on_memory (5.13; "force"
    from 6.6, else the bool's Y/N), online_policy, auto_movable_ratio and
    auto_movable_numa_aware (5.15)."""
    k = m.kernel
    out: dict[str, str] = {}
    if k.has_memmap_on_memory:
        mode = m.memmap_on_memory
        out["memmap_on_memory"] = ("force\n" if mode == "force"
                                   else "Y\n" if mode == "y" else "N\n")
    if k.at_least(5, 15):
        out["online_policy"] = m.online_policy + "\n"
        out["auto_movable_ratio"] = f"{m.auto_movable_ratio}\n"
        out["auto_movable_numa_aware"] = "Y\n" if m.auto_movable_numa_aware else "N\n"
    return out
