"""mm/sparse.c and mm/sparse-vmemmap.c as hotmem models them: section flags
and the memmap of a hot-added block, populated from its vmem_altmap or from
the buddy allocator."""
from __future__ import annotations

import numpy as np

from .arch import Arch
from .constants import SECTION_HAS_MEM_MAP, SECTION_IS_ONLINE, SECTION_MARKED_PRESENT
from .errors import HotplugError
from .memremap import VmemAltmap
from .state import MachineState


def vmemmap_pages_per_block(arch: Arch, block_size: int, mode: str) -> int:
    """memory_block_memmap_on_memory_pages(): memmap pages of one block, rounded
    up to whole pageblocks in force mode (the waste is part of altmap->free)."""
    pages = arch.memmap_pages(arch.block_pages(block_size))
    if mode == "force":
        pb = arch.pageblock_nr_pages
        pages = -(-pages // pb) * pb
    return pages


def force_waste_pages(arch: Arch, block_size: int) -> int:
    """Pages per block that force mode sets aside beyond the memmap itself."""
    return (vmemmap_pages_per_block(arch, block_size, "force")
            - vmemmap_pages_per_block(arch, block_size, "y"))


def populate_altmap(m: MachineState, altmap: VmemAltmap, start_pfn: int) -> None:
    """vmemmap_populate() of one block from its altmap: each mapping unit (a PMD
    leaf, or a base page) of the block's memmap, section by section ascending."""
    a = m.arch
    unit = a.vmemmap_chunk_pages
    unit_bytes = unit << a.page_shift
    mapped: set[int] = set()
    for k in range(m.sections_per_block):
        vs = (start_pfn + k * a.pages_per_section) * a.struct_page_size
        ve = vs + a.memmap_bytes_per_section
        for u in range(vs // unit_bytes, -(-ve // unit_bytes)):
            if u in mapped:
                continue
            if altmap.alloc_block_buf(unit) is None:
                raise HotplugError("ENOMEM", f"altmap of the block at pfn {start_pfn:#x} "
                                   f"cannot hold its memmap", pfn=start_pfn)
            mapped.add(u)


def memmap_units(m: MachineState) -> tuple[int, int]:
    """(mapping units per block, pages per unit) for a memmap not on the memory."""
    a = m.arch
    unit = a.vmemmap_chunk_pages
    per_block = -(-(m.pages_per_block * a.struct_page_size) // (unit << a.page_shift))
    return per_block, unit


def sparse_add_sections(m: MachineState, spfn: int, epfn: int, nid: int) -> None:
    """sparse_add_section() of every section of [spfn, epfn): present, with a memmap."""
    pps = m.arch.pages_per_section
    secs = slice(spfn // pps, epfn // pps)
    m.sec_flags[secs] = SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
    m.sec_nid[secs] = nid
    m.max_pfn_seen = max(m.max_pfn_seen, epfn)


def sparse_remove_sections(m: MachineState, spfn: int, epfn: int) -> None:
    """sparse_remove_section() of every section of [spfn, epfn)."""
    pps = m.arch.pages_per_section
    m.sec_flags[spfn // pps:epfn // pps] = 0


def online_mem_sections(m: MachineState, start: int, end: int, online: bool = True) -> None:
    """online_mem_sections() / offline_mem_sections() of the sections of [start, end)."""
    pps = m.arch.pages_per_section
    secs = slice(start // pps, -(-end // pps))
    if online:
        m.sec_flags[secs] |= SECTION_IS_ONLINE
    else:
        m.sec_flags[secs] &= ~np.uint8(SECTION_IS_ONLINE)
