"""Constants and enums of the kernel model, in the kernel's names.

The lowest layer of hotmem: every other module may import it, it imports
nothing of hotmem.  Sources: include/linux/mmzone.h (zones, migratetypes,
section flags), include/linux/memory.h (memory block states),
include/linux/memory_hotplug.h (online types, MHP_* flags).
"""
from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

KiB: Final = 1 << 10
MiB: Final = 1 << 20
GiB: Final = 1 << 30
TiB: Final = 1 << 40

# ---- per-page bit-planes of the page state (the enum of _core.pxd)
P_VMEMMAP: Final = 0      # self-hosted memmap page (mainline) / PageVmemmap (RFC)
P_RESERVED: Final = 1     # PG_reserved
P_BUDDY: Final = 2        # page of a free buddy block (head or tail)
P_HEAD: Final = 3         # first page of a free buddy block (PageBuddy)
P_UNMOVABLE: Final = 4    # allocated, unmovable (kernel allocation)
P_OFFLINE: Final = 5      # PageOffline: present, owned by a driver, not in the buddy
P_DIRTY: Final = 6        # PG_dirty on a PageOffline page: never onlined (virtio-mem)
PLANES: Final = {"vmemmap": P_VMEMMAP, "reserved": P_RESERVED, "buddy": P_BUDDY,
                 "head": P_HEAD, "unmovable": P_UNMOVABLE, "offline": P_OFFLINE,
                 "dirty": P_DIRTY}

# ---- enum migratetype; the pageblock byte keeps the isolate bit apart
MIGRATE_UNMOVABLE: Final = 0
MIGRATE_MOVABLE: Final = 1
MIGRATE_RECLAIMABLE: Final = 2
MIGRATE_HIGHATOMIC: Final = 3
MIGRATE_CMA: Final = 4
MIGRATE_ISOLATE: Final = 5
MIGRATE_TYPES: Final = 6
PB_ISOLATE: Final = 0x80
PB_MIGRATETYPE_MASK: Final = 7

# ---- how online hands a range to the buddy (the FREE_* enum of _core.pxd)
FreeStrategy = Literal["ctz", "get_order", "get_order_aligned", "page"]
FREE_STRATEGIES: Final[dict[str, int]] = {"ctz": 0, "get_order": 1, "get_order_aligned": 2,
                                          "page": 3}

# ---- enum zone_type, in the kernel's order; an arch configures a subset
ZONE_DMA: Final = 0
ZONE_DMA32: Final = 1
ZONE_NORMAL: Final = 2
ZONE_MOVABLE: Final = 3
ZONE_DEVICE: Final = 4
MAX_NR_ZONES: Final = 5
ZONE_NAMES: Final = ("DMA", "DMA32", "Normal", "Movable", "Device")
# sysctl_lowmem_reserve_ratio per zone type
LOWMEM_RESERVE_RATIO: Final = (256, 256, 32, 0, 0)

# ---- struct mem_section flags (low bits of section_mem_map)
SECTION_MARKED_PRESENT: Final = 1 << 0
SECTION_HAS_MEM_MAP: Final = 1 << 1
SECTION_IS_ONLINE: Final = 1 << 2
SECTION_IS_EARLY: Final = 1 << 3

# ---- memory block states, with the bit values of kernels before 6.19
MEM_ONLINE: Final = 1
MEM_GOING_OFFLINE: Final = 2
MEM_OFFLINE: Final = 4
STATE_NAMES: Final = {MEM_ONLINE: "online", MEM_GOING_OFFLINE: "going-offline",
                      MEM_OFFLINE: "offline"}

# ---- enum mmop: what a write to memoryN/state asks for
OnlineType = Literal["offline", "online", "online_kernel", "online_movable"]
MMOP_OFFLINE: Final = 0
MMOP_ONLINE: Final = 1
MMOP_ONLINE_KERNEL: Final = 2
MMOP_ONLINE_MOVABLE: Final = 3
ONLINE_TYPES: Final[dict[str, int]] = {"offline": MMOP_OFFLINE, "online": MMOP_ONLINE,
                                       "online_kernel": MMOP_ONLINE_KERNEL,
                                       "online_movable": MMOP_ONLINE_MOVABLE}
ONLINE_TYPE_NAMES: Final[dict[int, str]] = {v: k for k, v in ONLINE_TYPES.items()}

# ---- mhp_t flags a driver passes to add_memory()
MHP_NONE: Final = 0
MHP_MERGE_RESOURCE: Final = 1 << 0
MHP_MEMMAP_ON_MEMORY: Final = 1 << 1
MHP_NID_IS_MGID: Final = 1 << 2

# ---- settings
MemmapMode = Literal["n", "y", "force"]
MEMMAP_MODES: Final = ("n", "y", "force")
OnlinePolicy = Literal["contig-zones", "auto-movable"]
ONLINE_POLICIES: Final = ("contig-zones", "auto-movable")
AllocKind = Literal["movable", "unmovable"]
ALLOC_KINDS: Final = ("movable", "unmovable")
Placement = Literal["lowest", "random", "kernel"]
PLACEMENTS: Final = ("lowest", "random", "kernel")
Backend = Literal["fast", "reference"]

# the simulator's physical address space is capped to keep the reserved (never
# touched) address space of the bit-planes reasonable
MAX_SIM_PHYS_BITS: Final = 47

IntArray = npt.NDArray[np.int64]


def pageblock_lists(mt: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """The free list of each pageblock byte: MIGRATE_ISOLATE when isolated,
    else its migratetype (get_pageblock_migratetype + is_migrate_isolate)."""
    kinds: npt.NDArray[np.int64] = np.where(
        mt & PB_ISOLATE, MIGRATE_ISOLATE, mt & PB_MIGRATETYPE_MASK).astype(np.int64)
    return kinds


def pages_in_free_area(nr_free: npt.NDArray[np.int64]) -> int:
    """Pages in free blocks counted per order in the last axis (nr_free << order)."""
    sizes = np.int64(1) << np.arange(nr_free.shape[-1], dtype=np.int64)
    return int((nr_free * sizes).sum())
