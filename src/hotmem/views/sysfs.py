"""/sys/devices/system/memory as drivers/base/memory.c shows it."""
from __future__ import annotations

from ..constants import (
    MEM_ONLINE,
    MMOP_ONLINE,
    MMOP_ONLINE_KERNEL,
    MMOP_ONLINE_MOVABLE,
    STATE_NAMES,
)
from ..memory_hotplug import zone_for_pfn_range
from ..state import MachineState


def block_size_bytes(m: MachineState) -> str:
    return f"{m.block_size:x}\n"


def valid_zones(m: MachineState, blk: int) -> str:
    """valid_zones_show(): the zone of an online block ('none' if mixed); for an
    offline block the default zone, then the kernel and Movable choices that differ."""
    if m.blk_state[blk] == MEM_ONLINE:
        zid = int(m.blk_zone[blk])
        return ("none" if zid < 0 else m.zones[zid].name) + "\n"
    start, _ = m.block_range(blk)
    nid, group = int(m.blk_nid[blk]), m.group_of_block(blk)
    n = m.pages_per_block
    default = zone_for_pfn_range(m, MMOP_ONLINE, nid, group, start, n)
    names = [default.name]
    for t in (MMOP_ONLINE_KERNEL, MMOP_ONLINE_MOVABLE):
        z = zone_for_pfn_range(m, t, nid, group, start, n)
        if z is not default:
            names.append(z.name)
    return " ".join(names) + "\n"


def block_files(m: MachineState, blk: int) -> dict[str, str]:
    """The files of memoryN/ and their contents."""
    state = int(m.blk_state[blk])
    return {
        "state": STATE_NAMES[state] + "\n",
        "online": f"{1 if state == MEM_ONLINE else 0}\n",
        "phys_index": f"{blk:08x}\n",
        "phys_device": "0\n",
        "removable": "1\n",
        "valid_zones": valid_zones(m, blk),
    }


def memory_tree(m: MachineState) -> dict[str, str]:
    """Every file under /sys/devices/system/memory, path -> contents."""
    files = {"block_size_bytes": block_size_bytes(m),
             "auto_online_blocks": m.auto_online_blocks + "\n"}
    for blk in m.present_blocks():
        for name, text in block_files(m, int(blk)).items():
            files[f"memory{int(blk)}/{name}"] = text
    return files
