"""Arch constants, derived values and the memmap-on-memory rules per arch and era."""
import pytest

from hotmem.arch import ARCHES, get_arch
from hotmem.constants import GiB, MiB
from hotmem.errors import ConfigError
from hotmem.kernel import Kernel
from hotmem.memory_hotplug import mhp_supports_memmap_on_memory as memmap_on_memory_verdict
from hotmem.memremap import VmemAltmap
from hotmem.sparse import force_waste_pages, vmemmap_pages_per_block

# (arch, pages per section, default block size, vmemmap pages per block)
GEOMETRY = [
    ("x86_64", 32768, 128 * MiB, 512),
    ("arm64-4k", 32768, 128 * MiB, 512),
    ("arm64-16k", 8192, 128 * MiB, 32),
    ("arm64-64k", 8192, 512 * MiB, 8),
    ("ppc64-radix-4k", 4096, 256 * MiB, 1024),
    ("ppc64-radix-64k", 256, 256 * MiB, 4),
    ("ppc64-hash-64k", 256, 256 * MiB, 4),
    ("s390x", 65536, 256 * MiB, 1024),
    ("riscv64", 32768, 128 * MiB, 512),
]


@pytest.mark.parametrize("name,pps,block,vmm", GEOMETRY)
def test_geometry(name, pps, block, vmm):
    a = get_arch(name)
    assert a.pages_per_section == pps
    assert a.block_size == block
    assert vmemmap_pages_per_block(a, block, "y") == vmm
    # max-order blocks never cross a section
    assert a.max_page_order + a.page_shift <= a.section_size_bits


def test_every_arch_listed():
    assert sorted(ARCHES) == sorted(n for n, *_ in GEOMETRY)
    assert get_arch("arm64") is get_arch("arm64-4k")
    with pytest.raises(ConfigError, match="unknown arch 'sparc64'"):
        get_arch("sparc64")


# (arch, kernel, mode, supported)
VERDICTS = [
    ("x86_64", "6.12", "y", True),
    ("x86_64", "5.13", "y", True),
    ("x86_64", "5.10", "y", False),       # no memmap_on_memory yet
    ("arm64-4k", "6.1", "y", True),
    ("arm64-16k", "6.12", "y", False),    # 32 pages: not pageblock (2048) aligned
    ("arm64-16k", "6.12", "force", False),  # rounds up to 2048 pages, 512 KiB not PMD aligned
    ("arm64-64k", "6.12", "y", False),
    ("arm64-64k", "6.12", "force", False),  # force would fill the whole block
    ("ppc64-radix-4k", "6.6", "y", True),
    ("ppc64-radix-4k", "6.1", "y", False),  # ppc64 enabled in 6.6
    ("ppc64-radix-64k", "6.12", "y", False),  # 4 pages, pageblock is 32
    ("ppc64-radix-64k", "6.12", "force", True),
    ("ppc64-hash-64k", "6.12", "force", False),  # hook: radix only
    ("s390x", "6.8", "y", True),
    ("s390x", "6.6", "y", False),          # s390 enabled in 6.8
    ("riscv64", "6.11", "y", True),
    ("riscv64", "6.10", "y", False),
]


@pytest.mark.parametrize("name,kernel,mode,ok", VERDICTS)
def test_verdict(name, kernel, mode, ok):
    a = get_arch(name)
    got, why = memmap_on_memory_verdict(a, Kernel.parse(kernel), mode, a.block_size, a.block_size)
    assert got is ok, why


def test_force_waste():
    assert force_waste_pages(get_arch("ppc64-radix-64k"), 256 * MiB) == 28
    assert force_waste_pages(get_arch("x86_64"), 128 * MiB) == 0
    assert vmemmap_pages_per_block(get_arch("ppc64-radix-64k"), 256 * MiB, "force") == 32


def test_single_block_rule_by_era():
    a = get_arch("x86_64")
    two = 256 * MiB
    assert not memmap_on_memory_verdict(a, Kernel.parse("6.1"), "y", a.block_size, two)[0]
    assert not memmap_on_memory_verdict(a, Kernel.parse("6.6"), "y", a.block_size, two)[0]
    assert memmap_on_memory_verdict(a, Kernel.parse("6.8"), "y", a.block_size, two)[0]


def test_x86_block_size_probe():
    a = get_arch("x86_64")
    assert a.memory_block_size(4 * GiB) == 128 * MiB
    assert a.memory_block_size(64 * GiB) == 2 * GiB
    assert a.memory_block_size(65 * GiB) == 1 * GiB     # largest size dividing the end
    assert a.memory_block_size(64 * GiB + 128 * MiB) == 128 * MiB
    assert a.memory_block_size(65 * GiB, hypervisor=False) == 2 * GiB


def test_altmap_alloc_block_buf():
    alt = VmemAltmap(base_pfn=0x100000, end_pfn=0x107fff, free=512)
    assert alt.alloc_block_buf(512) == 0x100000
    assert (alt.alloc, alt.align, alt.nr_free()) == (512, 0, 0)
    assert alt.alloc_block_buf(1) is None
    alt = VmemAltmap(base_pfn=0x100001, end_pfn=0x108000, free=1024)
    assert alt.alloc_block_buf(512) == 0x100200     # aligned to 512: 511 pages of padding
    assert (alt.alloc, alt.align) == (512, 511)
    alt.free_pages(512)
    assert alt.alloc == 0


@pytest.mark.parametrize("bad", ["6", "six", "3.10", "9.1", 6.1])
def test_kernel_parse_rejects(bad):
    with pytest.raises(ConfigError):
        Kernel.parse(bad)


def test_kernel_flags():
    k61, k612 = Kernel.parse("6.1"), Kernel.parse("6.12")
    assert k61.vmemmap_reserved and k61.vmemmap_self_hosted_flag
    assert not k612.vmemmap_reserved and k612.vmemmap_self_hosted_flag
    assert k61.single_block_memmap_on_memory and not k612.single_block_memmap_on_memory
    assert k61.explicit_request_fails and not Kernel.parse("6.6").explicit_request_fails
    assert Kernel.parse("6.12.117+deb12-amd64") == k612
