"""Architecture policies as data: page and section geometry, memory block size,
pageblock and buddy orders, and the memmap-on-memory rules of each arch.

Only the constants a kernel config fixes are typed in; everything derived
(pages per section, vmemmap pages per block, force-mode waste) is computed.
Sources: arch/*/include/asm/sparsemem.h (SECTION_SIZE_BITS), the arch Kconfig
files (ARCH_FORCE_MAX_ORDER, ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE) and
mm/memory_hotplug.c (mhp_supports_memmap_on_memory); see docs/kernel-notes.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .constants import ZONE_DEVICE, ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NORMAL, GiB, KiB, MiB
from .errors import ConfigError


@dataclass(frozen=True)
class Arch:
    """One architecture / page-size configuration."""

    name: str
    page_shift: int
    section_size_bits: int
    pmd_shift: int
    pageblock_order: int
    max_page_order: int
    # memory_block_size_bytes() when no rule below applies
    block_size: int
    # first release whose Kconfig selects ARCH_MHP_MEMMAP_ON_MEMORY_ENABLE
    memmap_on_memory_since: tuple[int, int] | None
    # arch_supports_memmap_on_memory(): "pmd" (generic: vmemmap size PMD aligned),
    # "ppc-radix" (radix MMU; the PMD rule only for 4K pages), "never"
    memmap_hook: str
    # zones this config has, and the boot zone limits (zone, end address)
    zones: tuple[int, ...]
    zone_limits: tuple[tuple[int, int], ...]
    ram_base: int = 0
    max_physmem_bits: int = 46
    struct_page_size: int = 64
    # the vmemmap of a section is mapped by PMD leaves when it is a multiple of
    # PMD_SIZE (x86, arm64 4K, s390 segments); otherwise by base pages
    vmemmap_pmd: bool = True
    # x86: block size from the end of boot memory (probe_memory_block_size)
    x86_block_probe: bool = False
    # x86: the PCI hole [3.5G or 3G, 4G) and hot-plug area above 4 GiB
    pc_layout: bool = False
    # boot-time reservations (memblock): (offset from ram_base, size)
    kernel_image: tuple[int, int] = (2 * MiB, 30 * MiB)
    reserve_low: int = 0
    # bounce buffers memblock allocates below 4 GiB (SWIOTLB), after the memmap
    swiotlb: int = 0
    # the 2018 RFC's arch_add_memory keeps MHP_MEMMAP_FROM_RANGE (s390 clears it)
    memmap_from_range: bool = True
    # first release whose MEM_GOING_OFFLINE notifier refuses (EPERM) an offline
    # whose range splits a leaf mapping of the vmemmap (arm64, "Reject memory
    # removal that splits a kernel leaf mapping"; seen in 7.3.4, not in 6.12.117)
    rejects_vmemmap_leaf_split_since: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default=())

    # ---- derived geometry

    @property
    def page_size(self) -> int:
        return 1 << self.page_shift

    @property
    def pages_per_section(self) -> int:
        return 1 << (self.section_size_bits - self.page_shift)

    @property
    def section_size(self) -> int:
        return 1 << self.section_size_bits

    @property
    def pmd_size(self) -> int:
        return 1 << self.pmd_shift

    @property
    def pageblock_nr_pages(self) -> int:
        return 1 << self.pageblock_order

    @property
    def memmap_bytes_per_section(self) -> int:
        return self.pages_per_section * self.struct_page_size

    @property
    def memmap_pages_per_section(self) -> int:
        return -(-self.memmap_bytes_per_section // self.page_size)

    @property
    def vmemmap_chunk_pages(self) -> int:
        """Pages in one vmemmap mapping unit: a PMD leaf, or a base page."""
        if self.vmemmap_pmd and self.memmap_bytes_per_section % self.pmd_size == 0:
            return self.pmd_size // self.page_size
        return 1

    def pfn(self, addr: int) -> int:
        return addr >> self.page_shift

    def block_pages(self, block_size: int) -> int:
        return block_size >> self.page_shift

    def memmap_pages(self, nr_pages: int) -> int:
        """PAGE_ALIGN(nr_pages * sizeof(struct page)) in pages."""
        return -(-(nr_pages * self.struct_page_size) // self.page_size)

    def memory_block_size(self, boot_end: int, hypervisor: bool = True) -> int:
        """memory_block_size_bytes() for a machine whose boot memory ends at boot_end."""
        if not self.x86_block_probe:
            return self.block_size
        # arch/x86/mm/init_64.c probe_memory_block_size()
        if boot_end < 64 * GiB:
            return self.block_size
        if not hypervisor:
            return 2 * GiB
        bz = 2 * GiB
        while bz > self.block_size and boot_end % bz:
            bz >>= 1
        return bz


def _x86_64() -> Arch:
    return Arch(
        name="x86_64", page_shift=12, section_size_bits=27, pmd_shift=21,
        pageblock_order=9, max_page_order=10, block_size=128 * MiB,
        memmap_on_memory_since=(5, 13), memmap_hook="pmd",
        zones=(ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE),
        zone_limits=((ZONE_DMA, 16 * MiB), (ZONE_DMA32, 4 * GiB)),
        # MAX_PHYSMEM_BITS is 52 with 5-level paging (Debian's kernels on a
        # la57 CPU such as QEMU's -cpu max), 46 with 4-level
        max_physmem_bits=52, x86_block_probe=True, pc_layout=True,
        # nokaslr: the kernel is loaded at LOAD_PHYSICAL_ADDR = 16 MiB; its size
        # is Debian 6.12's code + rwdata + rodata + bss ("Memory: ..." boot line
        # of the oracle guests).  The whole first MiB is reserved ("x86/setup:
        # always reserve the first 1M of RAM"); SWIOTLB takes 64 MiB when
        # hot-pluggable memory may reach above 4 GiB, as in every oracle guest.
        kernel_image=(16 * MiB, 35504 * KiB), reserve_low=1 * MiB, swiotlb=64 * MiB,
    )


ARCHES: dict[str, Arch] = {}


def _register(a: Arch) -> None:
    ARCHES[a.name] = a


_register(_x86_64())
_register(Arch(
    name="arm64-4k", page_shift=12, section_size_bits=27, pmd_shift=21,
    pageblock_order=9, max_page_order=10, block_size=128 * MiB,
    memmap_on_memory_since=(5, 13), memmap_hook="pmd",
    zones=(ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE),
    zone_limits=((ZONE_DMA, 4 * GiB), (ZONE_DMA32, 4 * GiB)),
    ram_base=1 * GiB, max_physmem_bits=48, rejects_vmemmap_leaf_split_since=(7, 3),
    notes=("SECTION_SIZE_BITS is 27 since 5.12 (30 before)",
           "ZONE_DMA taken as the low 4 GiB (zone_dma_bits = 32, no firmware limit)"),
))
_register(Arch(
    name="arm64-16k", page_shift=14, section_size_bits=27, pmd_shift=25,
    pageblock_order=11, max_page_order=11, block_size=128 * MiB,
    memmap_on_memory_since=(5, 13), memmap_hook="pmd",
    zones=(ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE),
    zone_limits=((ZONE_DMA, 4 * GiB), (ZONE_DMA32, 4 * GiB)),
    ram_base=1 * GiB, max_physmem_bits=48, vmemmap_pmd=False,
))
_register(Arch(
    name="arm64-64k", page_shift=16, section_size_bits=29, pmd_shift=29,
    pageblock_order=13, max_page_order=13, block_size=512 * MiB,
    memmap_on_memory_since=(5, 13), memmap_hook="pmd",
    zones=(ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE),
    zone_limits=((ZONE_DMA, 4 * GiB), (ZONE_DMA32, 4 * GiB)),
    ram_base=1 * GiB, max_physmem_bits=48, vmemmap_pmd=False,
))
_register(Arch(
    name="ppc64-radix-4k", page_shift=12, section_size_bits=24, pmd_shift=21,
    pageblock_order=9, max_page_order=12, block_size=256 * MiB,
    memmap_on_memory_since=(6, 6), memmap_hook="ppc-radix",
    zones=(ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE), zone_limits=(),
    max_physmem_bits=51, vmemmap_pmd=False,
    notes=("block size: pseries LMB size, typically 256 MiB",),
))
_register(Arch(
    name="ppc64-radix-64k", page_shift=16, section_size_bits=24, pmd_shift=21,
    pageblock_order=5, max_page_order=8, block_size=256 * MiB,
    memmap_on_memory_since=(6, 6), memmap_hook="ppc-radix",
    zones=(ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE), zone_limits=(),
    max_physmem_bits=51, vmemmap_pmd=False,
    notes=("pageblock_order from the 2 MiB radix huge page (HUGETLB_PAGE_SIZE_VARIABLE)",),
))
_register(Arch(
    name="ppc64-hash-64k", page_shift=16, section_size_bits=24, pmd_shift=24,
    pageblock_order=8, max_page_order=8, block_size=256 * MiB,
    memmap_on_memory_since=(6, 6), memmap_hook="never",
    zones=(ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE), zone_limits=(),
    max_physmem_bits=51, vmemmap_pmd=False,
    notes=("the ppc64 hook refuses memmap on memory without the radix MMU",),
))
_register(Arch(
    name="s390x", page_shift=12, section_size_bits=28, pmd_shift=20,
    pageblock_order=8, max_page_order=10, block_size=256 * MiB,
    memmap_on_memory_since=(6, 8), memmap_hook="pmd",
    zones=(ZONE_DMA, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE),
    zone_limits=((ZONE_DMA, 2 * GiB),), max_physmem_bits=46, memmap_from_range=False,
    notes=("block size max(256 MiB, SCLP storage increment); 256 MiB taken",),
))
_register(Arch(
    name="riscv64", page_shift=12, section_size_bits=27, pmd_shift=21,
    pageblock_order=9, max_page_order=10, block_size=128 * MiB,
    memmap_on_memory_since=(6, 11), memmap_hook="pmd",
    zones=(ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE),
    zone_limits=((ZONE_DMA32, 4 * GiB),), ram_base=2 * GiB, max_physmem_bits=47,
    notes=("memory hotplug and memmap on memory enabled for RISC-V in 6.11",),
))

ALIASES = {"arm64": "arm64-4k", "x86-64": "x86_64", "amd64": "x86_64",
           "ppc64le": "ppc64-radix-64k", "s390": "s390x"}


def get_arch(name: str) -> Arch:
    """The Arch called ``name`` (``arm64`` means ``arm64-4k``)."""
    key = ALIASES.get(name, name)
    try:
        return ARCHES[key]
    except KeyError:
        raise ConfigError(
            f"unknown arch {str(name)[:40]!r}; known: {', '.join(sorted(ARCHES))}") from None


def boot_ram_ranges(a: Arch, boot_memory: int) -> list[tuple[int, int]]:
    """Present pfn ranges of boot memory as firmware reports them.

    x86_64 follows a QEMU pc machine: page 0 and [0x9fc00, 1M) are not RAM, RAM
    below 4 GiB ends 140 KiB short of the boot memory size, or of 3 GiB when
    there are 3.5 GiB or more, and the rest starts at 4 GiB.  Other arches: one
    range at the arch's RAM base.
    """
    ps = a.page_shift
    if not a.pc_layout:
        s = a.ram_base >> ps
        return [(s, s + (boot_memory >> ps))]
    lowmem = boot_memory if boot_memory < 0xE0000000 else 0xC0000000
    high = boot_memory - lowmem
    # SeaBIOS (QEMU 7.2) reserves the top 140 KiB of low RAM: a 2 GiB guest's
    # e820 shows 0x100000-0x7ffdcfff usable (every oracle capture)
    ranges = [(1, 0x9FC00 >> ps), (0x100000 >> ps, (lowmem - 0x23000) >> ps)]
    if high:
        ranges.append((4 * GiB >> ps, (4 * GiB + high) >> ps))
    return ranges


def boot_end(a: Arch, boot_memory: int) -> int:
    """Physical address where boot memory ends."""
    return max(e for _, e in boot_ram_ranges(a, boot_memory)) << a.page_shift
