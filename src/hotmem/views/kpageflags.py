"""/proc/kpageflags: one little-endian u64 of KPF_* bits per pfn (fs/proc/page.c)."""
from __future__ import annotations

from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from ..constants import (
    P_BUDDY,
    P_DIRTY,
    P_OFFLINE,
    P_RESERVED,
    P_UNMOVABLE,
    P_VMEMMAP,
    SECTION_IS_ONLINE,
)
from ..kernel import Kernel
from ..state import MachineState

KPF = {"LOCKED": 0, "ERROR": 1, "REFERENCED": 2, "UPTODATE": 3, "DIRTY": 4, "LRU": 5,
       "ACTIVE": 6, "SLAB": 7, "WRITEBACK": 8, "RECLAIM": 9, "BUDDY": 10, "MMAP": 11,
       "ANON": 12, "SWAPCACHE": 13, "SWAPBACKED": 14, "COMPOUND_HEAD": 15,
       "COMPOUND_TAIL": 16, "HUGE": 17, "UNEVICTABLE": 18, "HWPOISON": 19, "NOPAGE": 20,
       "KSM": 21, "THP": 22, "OFFLINE": 23, "ZERO_PAGE": 24, "IDLE": 25, "PGTABLE": 26,
       "RESERVED": 32, "MLOCKED": 33, "OWNER_2": 34, "PRIVATE": 35, "PRIVATE_2": 36,
       "OWNER_PRIVATE": 37, "ARCH": 38, "UNCACHED": 39, "SOFTDIRTY": 40, "ARCH_2": 41}

NOPAGE = np.uint64(1 << KPF["NOPAGE"])
BUDDY = np.uint64(1 << KPF["BUDDY"])
RESERVED = np.uint64(1 << KPF["RESERVED"])
OWNER_PRIVATE = np.uint64(1 << KPF["OWNER_PRIVATE"])
SLAB = np.uint64(1 << KPF["SLAB"])
OFFLINE = np.uint64(1 << KPF["OFFLINE"])
DIRTY = np.uint64(1 << KPF["DIRTY"])
# a movable allocation is simulated as an anonymous, mapped, LRU user page
ANON_PAGE = np.uint64(sum(1 << KPF[k] for k in ("UPTODATE", "LRU", "MMAP", "ANON", "SWAPBACKED")))

CHUNK = 1 << 22  # pfns rendered at a time


def vmemmap_flags(m: MachineState) -> np.uint64:
    """KPF bits of a self-hosted memmap page in this machine's era and design."""
    return np.uint64(m.design.memmap_kpageflags(m))


def unpopulated_value(kernel: Kernel) -> np.uint64:
    """KPF value of a pfn without an online memmap (pfn_to_online_page() NULL:
    offline, never onlined or removed memory, holes): stable_page_flags(NULL)
    = KPF_NOPAGE until 6.15; kpage_read() writes 0 from 6.16."""
    return np.uint64(0) if kernel.kpageflags_unpopulated_zero else NOPAGE


def _bits(m: MachineState, plane: int, s: int, e: int) -> npt.NDArray[np.bool_]:
    """Booleans of ``plane`` for pfns [s, e) (s is 64-aligned)."""
    e64 = -(-e // 64) * 64
    w = m.pages.words(plane, s, e64)
    return np.unpackbits(w.view(np.uint8), bitorder="little")[: e - s].astype(bool)


def kpageflags(m: MachineState, start: int, end: int) -> npt.NDArray[np.uint64]:
    """KPF values of pfns [start, end) as the era's kernel reports them."""
    end = min(end, m.kpageflags_end())
    if end <= start:
        return np.zeros(0, dtype=np.uint64)
    out = np.empty(end - start, dtype=np.uint64)
    vm_bits = vmemmap_flags(m)
    memmap = (np.concatenate(list(m.memmap_from_buddy.values()))
              if m.memmap_from_buddy else np.zeros(0, np.int64))
    sec_shift = m.arch.section_size_bits - m.arch.page_shift
    absent = unpopulated_value(m.kernel)
    pos = start
    while pos < end:
        s = pos // 64 * 64
        e = min(end, s + CHUNK)
        online = (m.sec_flags[np.arange(s, e) >> sec_shift] & SECTION_IS_ONLINE) != 0
        b = _bits(m, P_BUDDY, s, e)
        r = _bits(m, P_RESERVED, s, e)
        v = _bits(m, P_VMEMMAP, s, e)
        u = _bits(m, P_UNMOVABLE, s, e)
        o = _bits(m, P_OFFLINE, s, e)
        d = _bits(m, P_DIRTY, s, e)
        f = np.zeros(e - s, dtype=np.uint64)
        f[b] |= BUDDY
        f[r] |= RESERVED
        f[v] |= vm_bits
        slab = u.copy()
        if len(memmap):
            inside = memmap[(memmap >= s) & (memmap < e)] - s
            slab[inside] = False  # vmemmap_alloc_block() pages carry no flag
        f[slab] |= SLAB
        f[~(b | r | v | u | o)] = ANON_PAGE
        # PageOffline pages of a driver (virtio-mem, balloons); PG_dirty marks
        # those virtio-mem never onlined
        f[o] |= OFFLINE
        f[o & d] |= DIRTY
        f[~online] = absent
        out[pos - start:e - start] = f[pos - s:]
        pos = e
    return out


def write_kpageflags(m: MachineState, fh: BinaryIO, start: int = 0, end: int | None = None) -> int:
    """Write the kpageflags image of [start, end) (default: every pfn the kernel's
    file covers, see Machine.kpageflags_end); returns the bytes written."""
    end = m.kpageflags_end() if end is None else end
    n = 0
    for s in range(start, end, CHUNK):
        data = kpageflags(m, s, min(end, s + CHUNK)).astype("<u8").tobytes()
        fh.write(data)
        n += len(data)
    return n


def decode(value: int) -> list[str]:
    """Names of the KPF bits set in value (page-types style)."""
    return [name for name, bit in KPF.items() if value >> bit & 1]
