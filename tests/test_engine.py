"""Hot-add, online, offline and remove with exact kernel numbers, per arch and era."""
import pytest

from conftest import GiB, MiB, buddy_orders, snapshots_equal
from hotmem.constants import MEM_OFFLINE, MEM_ONLINE, P_UNMOVABLE
from hotmem.errors import ConfigError, HotplugError
from hotmem.page_alloc import usable_free_pages
from hotmem.views.kpageflags import kpageflags

X86_DIMM = 0x100000000  # QEMU puts DIMMs at 4 GiB on a 2 GiB pc machine


def test_x86_128m_block_online_movable(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    blocks = m.add(X86_DIMM, "128M")
    assert blocks == [32]
    alt = m.block_altmap(32)
    assert (alt.base_pfn, alt.end_pfn, alt.free, alt.alloc, alt.align) == (
        0x100000, 0x107FFF, 512, 512, 0)
    assert m.blk_state[32] == MEM_OFFLINE
    z = m.zone_by_name("Movable")
    before = (z.present_pages, z.managed_pages, z.spanned_pages)
    m.online(32, "online_movable")
    assert before == (0, 0, 0)
    assert (z.present_pages, z.managed_pages, z.spanned_pages) == (32768, 32256, 32768)
    assert z.zone_start_pfn == 0x100000
    assert buddy_orders(m) == [0] * 9 + [1, 31]
    # the order-9 chunk at B+512 and the order-10 chunks from B+1024
    heads, orders = m.pages.free_blocks(0x100000, 0x108000)
    assert heads[0] == 0x100200 and orders[0] == 9
    assert list(heads[1:3]) == [0x100400, 0x100800] and set(orders[1:]) == {10}
    m.offline(32)
    assert (z.present_pages, z.managed_pages, z.spanned_pages) == (0, 0, 0)
    assert m.block_altmap(32).alloc == 512  # the memmap stays mapped until hot-remove
    m.remove(X86_DIMM, "128M")
    assert m.blk_state[32] == 0 and m.block_altmap(32) is None


def test_x86_2g_block(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y",
                block_size="2G")
    m.add(X86_DIMM, "2G")
    assert m.nr_vmemmap_pages(2) == 8192
    m.online(2, "online_movable")
    assert buddy_orders(m) == [0] * 10 + [504]
    z = m.zone_by_name("Movable")
    assert (z.present_pages, z.managed_pages) == (524288, 524288 - 8192)


def test_s390x_256m_block(machine):
    m = machine(arch="s390x", kernel="6.8", boot_memory="2G", memmap_on_memory="y")
    [blk] = m.add(0x100000000, "256M")
    assert m.nr_vmemmap_pages(blk) == 1024
    assert m.block_altmap(blk).alloc == 1024   # four 1 MiB segments
    m.online(blk, "online_movable")
    assert buddy_orders(m) == [0] * 10 + [63]


def test_ppc64_radix_64k_force_waste(machine):
    m = machine(arch="ppc64-radix-64k", kernel="6.12", boot_memory="4G", memmap_on_memory="force")
    [blk] = m.add(4 * GiB, "256M")
    alt = m.block_altmap(blk)
    # 4 pages of memmap (base pages), 28 more set aside to keep the pageblock
    assert (alt.free, alt.alloc) == (32, 4)
    assert alt.free - alt.alloc == 28
    m.online(blk, "online_movable")
    z = m.zone_by_name("Movable")
    assert (z.present_pages, z.managed_pages) == (4096, 4064)
    assert buddy_orders(m) == [0, 0, 0, 0, 0, 1, 1, 1, 15]
    # waste pages look exactly like memmap pages
    f = kpageflags(m, blk * 4096, blk * 4096 + 33)
    assert set(f[:32].tolist()) == {1 << 37} and f[32] == 0x400


def test_arm64_64k_refused_falls_back(machine):
    m = machine(arch="arm64-64k", kernel="6.12", boot_memory="4G", memmap_on_memory="y")
    start = 8 * GiB
    [blk] = m.add(start, "512M")
    assert m.nr_vmemmap_pages(blk) == 0
    # the memmap (8 base pages) came from boot memory
    assert len(m.memmap_from_buddy[blk]) == 8
    m.online(blk, "online_movable")
    assert m.zone_by_name("Movable").managed_pages == 8192


@pytest.mark.parametrize("kernel,vmemmap_kpf", [
    ("6.12", 0x2000000000),        # PageOffline init: OWNER_PRIVATE only
    ("6.1", 0x2100000000),         # PG_reserved + PG_vmemmap_self_hosted
    ("5.13", 0x100000000),         # PG_reserved only
])
def test_kpageflags_by_era(machine, kernel, vmemmap_kpf):
    m = machine(arch="x86_64", kernel=kernel, boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "128M")
    f = kpageflags(m, 0x100000, 0x108000)
    assert (f == 0x100000).all()
    m.online(32, "online_movable")
    f = kpageflags(m, 0x100000, 0x108000)
    assert (f[:512] == vmemmap_kpf).all()
    assert (f[512:] == 0x400).all()
    m.offline(32)
    assert (kpageflags(m, 0x100000, 0x108000) == 0x100000).all()


def test_kpageflags_boot_holes_are_reserved(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G")
    f = kpageflags(m, 0, 0x100)
    assert f[0] == 1 << 32           # pfn 0 is a hole in an online section
    assert (f[0x9F:0x100] == 1 << 32).all()


def test_6_1_multi_block_dimm_has_no_memmap_on_memory(machine):
    m = machine(arch="x86_64", kernel="6.1", boot_memory="2G", memmap_on_memory="y")
    z = m.zone_by_name("DMA32")
    free0 = m.zone_free_pages(z)
    blocks = m.add(X86_DIMM, "256M")
    assert [m.nr_vmemmap_pages(b) for b in blocks] == [0, 0]
    assert free0 - m.zone_free_pages(z) == 1024   # two 2 MiB memmap leaves from DMA32
    m6 = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    assert [m6.nr_vmemmap_pages(b) for b in m6.add(X86_DIMM, "256M")] == [512, 512]


def test_direct_request_einval_before_6_6(machine):
    m = machine(arch="x86_64", kernel="6.1", boot_memory="2G", memmap_on_memory="y")
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.add(X86_DIMM, "256M", driver="direct")
    assert e.value.errno == "EINVAL"
    assert snapshots_equal(snap, m.snapshot()) == []
    m66 = machine(arch="x86_64", kernel="6.6", boot_memory="2G", memmap_on_memory="y")
    assert [m66.nr_vmemmap_pages(b) for b in m66.add(X86_DIMM, "256M", driver="direct")] == [0, 0]


def test_remove_granularity_before_6_8(machine):
    m = machine(arch="x86_64", kernel="6.1", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "128M")
    m.add(X86_DIMM + 128 * MiB, "128M")
    with pytest.raises(HotplugError, match="wrong granularity") as e:
        m.remove(X86_DIMM, "256M")
    assert e.value.errno == "EINVAL"
    m.remove(X86_DIMM, "128M")
    m.remove(X86_DIMM + 128 * MiB, "128M")


def test_force_needs_6_6():
    from hotmem.machine import Machine
    with pytest.raises(ConfigError, match="6.6"):
        Machine(kernel="6.1", memmap_on_memory="force")


def test_large_dimm_into_small_vm_enomem(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="1G", memmap_on_memory="n")
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.add(X86_DIMM, "64G")    # needs 1 GiB of memmap from a 1 GiB VM
    assert e.value.errno == "ENOMEM"
    assert "262144 pages" in e.value.message
    assert snapshots_equal(snap, m.snapshot()) == []
    m.add(X86_DIMM, "12G")         # 192 MiB of memmap fits
    assert len(m.memmap_from_buddy) == 96


@pytest.mark.parametrize("start,size,errno", [
    (X86_DIMM + 4096, "128M", "EINVAL"),
    (X86_DIMM, "100M", "EINVAL"),
    (X86_DIMM, 0, "EINVAL"),
    (0, "128M", "EEXIST"),
    (1 << 47, "128M", "E2BIG"),   # the simulator caps physical addresses at 47 bits
])
def test_add_errors(machine, start, size, errno):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.add(start, size)
    assert e.value.errno == errno
    assert snapshots_equal(snap, m.snapshot()) == []


def test_add_twice_eexist(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "256M")
    with pytest.raises(HotplugError, match="memory33") as e:
        m.add(X86_DIMM + 128 * MiB, "128M")
    assert e.value.errno == "EEXIST"


def test_state_errors(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "128M")
    with pytest.raises(HotplugError, match="already offline") as e:
        m.offline(32)
    assert e.value.errno == "EINVAL"
    m.online(32, "online_movable")
    with pytest.raises(HotplugError, match="already online") as e:
        m.online(32, "online_kernel")
    assert e.value.errno == "EINVAL"
    with pytest.raises(HotplugError, match="onlined") as e:
        m.remove(X86_DIMM, "128M")
    assert e.value.errno == "EBUSY" and e.value.block == 32
    with pytest.raises(HotplugError, match="memory99 does not exist"):
        m.online(99)
    with pytest.raises(HotplugError, match="spans more than one zone"):
        m.offline(0)   # DMA + DMA32


def test_offline_unmovable_ebusy_names_pfn(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "256M")
    m.online(32, "online")
    m.online(33, "online")
    assert m.zones[int(m.blk_zone[32])].name == "Normal"
    pfns = m.alloc(10, kind="unmovable", zone="Normal", placement="lowest")
    assert pfns[0] == 0x100200       # the first page after the memmap
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.offline(32)
    assert e.value.errno == "EBUSY" and e.value.pfn == 0x100200 and "0x100200" in str(e.value)
    assert snapshots_equal(snap, m.snapshot()) == []
    m.offline(33)


def test_offline_migrates_movable_pages(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "256M")
    m.online(32, "online_movable")
    m.online(33, "online_movable")
    z = m.zone_by_name("Movable")
    m.alloc(20000, zone="Movable", placement="lowest")
    assert m.zone_free_pages(z) == 2 * 32256 - 20000
    m.offline(32)
    # all 20000 pages moved to memory33
    assert len(m.pages.allocated_pfns(0x108000, 0x110000, False)) == 20000
    assert m.zone_free_pages(z) == 32256 - 20000


def test_offline_without_room_eintr(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="256M", memmap_on_memory="y")
    m.add(X86_DIMM, "1G")
    for b in range(32, 40):
        m.online(b, "online_movable")
    m.alloc(8 * 32256 - 200, zone="Movable", placement="random", seed=7)
    dma32 = m.zone_by_name("DMA32")
    m.alloc(usable_free_pages(m, dma32, dma32.ztype) - 300, zone="DMA32", kind="movable")
    snap = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.offline(32)
    assert e.value.errno == "EINTR" and "cannot be migrated" in e.value.message
    assert snapshots_equal(snap, m.snapshot()) == []


def test_unmovable_in_movable_zone_refused_and_pinned_eintr(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "128M")
    m.online(32, "online_movable")
    with pytest.raises(HotplugError) as e:
        m.alloc(1, kind="unmovable", zone="Movable")
    assert e.value.errno == "ENOMEM"   # GFP_KERNEL is never served from ZONE_MOVABLE
    # a page pinned there anyway (a long-term pin of a user page) passes
    # isolation (has_unmovable_pages() does not look in ZONE_MOVABLE) but
    # migration never moves it: the kernel retries until a signal, EINTR
    pinned = 0x100000 + 4096
    m.pages.take_range(pinned, pinned + 1)
    m.pages.set(P_UNMOVABLE, pinned, pinned + 1)
    before = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.offline(32)
    assert (e.value.errno, e.value.pfn, e.value.block) == ("EINTR", pinned, 32)
    assert "signal" in e.value.message
    assert snapshots_equal(before, m.snapshot()) == []


def test_zone_span_follows_offline_order(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "512M")
    for b in (32, 33, 34, 35):
        m.online(b, "online_movable")
    z = m.zone_by_name("Movable")
    m.offline(33)       # a hole: the span stays
    assert (z.zone_start_pfn, z.spanned_pages) == (0x100000, 4 * 32768)
    m.offline(32)       # the start moves past the hole to memory34
    assert (z.zone_start_pfn, z.spanned_pages) == (0x110000, 2 * 32768)
    m.offline(35)
    assert (z.zone_start_pfn, z.spanned_pages) == (0x110000, 32768)
    m.offline(34)
    assert (z.zone_start_pfn, z.spanned_pages) == (0, 0)


def test_online_default_zone_contig(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "384M")
    assert m.online(33, "online_movable").name == "Movable"
    # memory32 and memory34 touch Movable but do not intersect it: kernel zone
    assert m.online(32, "online").name == "Normal"
    assert m.online(34, "online").name == "Normal"


def test_auto_movable_policy(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y",
                online_policy="auto-movable", auto_movable_ratio=301)
    blocks = m.add(X86_DIMM, "6G")      # 48 blocks, 3x the boot memory
    zones = [m.online(b, "online").name for b in blocks]
    assert set(zones) == {"Movable"}     # 6G <= 3.01 x ~2G of boot memory
    blocks = m.add(X86_DIMM + 6 * GiB, "2G")
    zones = [m.online(b, "online").name for b in blocks]
    assert set(zones) == {"Normal"}      # would exceed the ratio: kernel zone


def test_auto_online_blocks(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y",
                auto_online_blocks="online_movable")
    blocks = m.add(X86_DIMM, "256M")
    assert all(m.blk_state[b] == MEM_ONLINE for b in blocks)
    assert m.zone_by_name("Movable").present_pages == 2 * 32768


def test_alloc_free_roundtrip(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(X86_DIMM, "256M")
    m.online(32, "online_movable")
    m.online(33, "online_movable")
    orders = buddy_orders(m)
    m.alloc(12345, zone="Movable", seed=3)
    assert buddy_orders(m) != orders
    m.free(kind="movable", zone="Movable")
    assert buddy_orders(m) == orders


def test_watermarks_movable(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    z = m.zone_by_name("Movable")
    assert (z.wmark_min, z.wmark_low, z.wmark_high) == (32, 32, 32)
    m.add(X86_DIMM, "128M")
    m.online(32, "online_movable")
    assert z.wmark_min == 32       # clamp(32256 / 1024, 32, 128)
    m61 = machine(arch="x86_64", kernel="6.1", boot_memory="2G", memmap_on_memory="y")
    z61 = m61.zone_by_name("Movable")
    assert z61.wmark_min == 0      # 6.1: a proportional share of nothing
    assert m.min_free_kbytes == 45056  # khugepaged: 512 * 11 * 2 zones * 4 kB


@pytest.mark.parametrize("arch,kernel,start", [
    ("x86_64", "6.12", X86_DIMM), ("arm64-4k", "6.12", 8 * GiB),
    ("ppc64-radix-4k", "6.12", 8 * GiB), ("s390x", "6.12", 8 * GiB),
    ("riscv64", "6.12", 8 * GiB), ("ppc64-radix-64k", "6.12", 8 * GiB),
])
def test_lifecycle_every_arch(machine, arch, kernel, start):
    m = machine(arch=arch, kernel=kernel, boot_memory="2G", memmap_on_memory="force"
                if arch == "ppc64-radix-64k" else "y")
    size = 4 * m.block_size
    blocks = m.add(start, size)
    for b in blocks:
        m.online(b, "online_movable")
    z = m.zone_by_name("Movable")
    vmm = m.nr_vmemmap_pages(blocks[0])
    assert vmm > 0
    assert z.present_pages == 4 * m.pages_per_block
    assert z.managed_pages == 4 * (m.pages_per_block - vmm)
    for b in blocks:
        m.offline(b)
    m.remove(start, size)
    assert z.present_pages == z.managed_pages == z.spanned_pages == 0


def test_second_node(machine):
    m = machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y",
                nr_nodes=2)
    blocks = m.add(X86_DIMM, "256M", nid=1)
    assert m.online(blocks[0], "online").nid == 1
    m.online(blocks[1], "online_movable")
    from hotmem.views import procfs
    lines = procfs.buddyinfo(m).splitlines()
    assert lines[-2].startswith("Node 1, zone   Normal")
    assert lines[-1].startswith("Node 1, zone  Movable")
    m.alloc(1000, zone="Normal", nid=1, placement="lowest")
    dma32 = m.zone_by_name("DMA32")
    free0 = m.zone_free_pages(dma32)
    m.offline(blocks[0])
    # migration prefers the other node: the 1000 pages moved to node 0
    assert free0 - m.zone_free_pages(dma32) == 1000
    with pytest.raises(HotplugError, match="node 2"):
        m.add(X86_DIMM + GiB, "128M", nid=2)
