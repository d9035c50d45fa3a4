"""struct vmem_altmap (include/linux/memremap.h): the allocator that hands out
the memmap of a hot-added range from the range itself (pfns and page counts)."""
from __future__ import annotations

from dataclasses import dataclass


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
