"""struct vmem_altmap accounting and the memmap-on-memory eligibility rules."""
from __future__ import annotations

from dataclasses import dataclass

from .arch import Arch
from .kernel import Kernel

MEMMAP_MODES = ("n", "y", "force")


@dataclass
class VmemAltmap:
    """include/linux/memremap.h struct vmem_altmap (pfns and page counts)."""

    base_pfn: int
    end_pfn: int
    reserve: int = 0
    free: int = 0
    align: int = 0
    alloc: int = 0

    def offset(self) -> int:
        """vmem_altmap_offset(): pfns at the range start owned by the altmap."""
        return self.reserve + self.free

    def next_pfn(self) -> int:
        return self.base_pfn + self.reserve + self.alloc + self.align

    def nr_free(self) -> int:
        """Pages still available to vmemmap population."""
        return max(self.free - (self.alloc + self.align), 0)

    def alloc_block_buf(self, nr_pages: int) -> int | None:
        """altmap_alloc_block_buf(): hand out nr_pages naturally aligned to the
        lowest power of two dividing nr_pages; None when it does not fit."""
        pfn = self.next_pfn()
        align_to = nr_pages & -nr_pages
        pad = (-pfn) % align_to
        if nr_pages + pad > self.nr_free():
            return None
        self.alloc += nr_pages
        self.align += pad
        return pfn + pad

    def free_pages(self, nr_pages: int) -> None:
        """vmem_altmap_free()."""
        self.alloc -= nr_pages


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


def arch_supports_memmap_on_memory(arch: Arch, vmemmap_size: int) -> bool:
    """arch_supports_memmap_on_memory() on the memmap size in bytes of one block."""
    if arch.memmap_hook == "never":
        return False
    if arch.memmap_hook == "ppc-radix" and arch.page_shift == 16:
        # 64K radix: the memmap is mapped with base pages, no PMD rule
        return True
    return vmemmap_size % arch.pmd_size == 0


def memmap_on_memory_verdict(arch: Arch, kernel: Kernel, mode: str, block_size: int,
                             size: int | None = None) -> tuple[bool, str]:
    """mhp_supports_memmap_on_memory() as the era has it: (supported, reason).

    ``size`` is the size of the add_memory request for the eras (5.13 .. 6.7)
    that only self-host the memmap of single-block requests.
    """
    if mode == "n":
        return False, "memory_hotplug.memmap_on_memory=N"
    if not kernel.has_memmap_on_memory:
        return False, f"kernel {kernel} has no memmap_on_memory (5.13+)"
    if arch.memmap_on_memory_since is None or not kernel.at_least(*arch.memmap_on_memory_since):
        since = arch.memmap_on_memory_since
        return False, (f"{arch.name} does not select ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE"
                       + (f" before {since[0]}.{since[1]}" if since else ""))
    if mode == "force" and not kernel.has_force_mode:
        return False, f"memmap_on_memory=force needs 6.6 (kernel {kernel})"
    block_pages = arch.block_pages(block_size)
    vmemmap_size = block_pages * arch.struct_page_size
    if kernel.single_block_memmap_on_memory and size is not None and size != block_size:
        return False, (f"request of {size:#x} bytes is not one memory block "
                       f"({block_size:#x}); kernel {kernel} self-hosts single blocks only")
    if not kernel.has_force_mode:
        # 5.13 .. 6.5: PMD-aligned memmap and pageblock-aligned remainder
        remaining = block_size - vmemmap_size
        if vmemmap_size % arch.pmd_size:
            return False, f"memmap of a block ({vmemmap_size:#x} bytes) is not PMD aligned"
        if remaining % (arch.pageblock_nr_pages << arch.page_shift):
            return False, "memory after the memmap is not pageblock aligned"
        return True, "supported"
    if vmemmap_size % arch.page_size:
        return False, "memmap of a block is not a whole number of pages"
    pages = vmemmap_pages_per_block(arch, block_size, mode)
    if pages % arch.pageblock_nr_pages:
        return False, (f"{pages} memmap pages per block are not a multiple of "
                       f"pageblock_nr_pages ({arch.pageblock_nr_pages})")
    if pages == block_pages:
        return False, "the memmap would fill the whole block"
    if not arch_supports_memmap_on_memory(arch, vmemmap_size):
        if arch.memmap_hook == "never":
            return False, f"{arch.name}: the arch hook refuses (no radix MMU)"
        return False, (f"memmap of a block ({vmemmap_size:#x} bytes) is not a multiple "
                       f"of PMD_SIZE ({arch.pmd_size:#x})")
    return True, "supported"
