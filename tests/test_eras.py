"""Kernel eras 6.13 .. 7.3: one test per modelled change, named by its release,
with the exact output of the release before and the release that changed it
(sources in docs/kernel-notes.md, "Eras 6.13 .. 7.3")."""
import re

import numpy as np
import pytest

from hotmem import ConfigError, Machine
from hotmem.kernel import Kernel
from hotmem.views import procfs
from hotmem.views.kpageflags import kpageflags

DIMM = 0x100000000
BLOCK = 0x8000          # pfns of a 128 MiB block


def movable(kernel, arch="x86_64", mom="y"):
    """2 GiB x86_64 VM with one 128 MiB DIMM onlined movable (memory32)."""
    m = Machine(arch=arch, kernel=kernel, boot_memory="2G", memmap_on_memory=mom)
    m.add(DIMM, "128M")
    m.online(32, "online_movable")
    return m


def section(text, zone):
    """The /proc/zoneinfo section of ``zone`` on node 0."""
    start = text.index(f"Node 0, zone {zone:>8}\n")
    nxt = text.find("\nNode ", start + 1)
    return text[start:] if nxt < 0 else text[start:nxt + 1]


# ---------------------------------------------------------------- releases

@pytest.mark.parametrize("bad, why", [
    ("7.4", "kernel: 7.4 is newer than the newest release hotmem models (7.3)"),
    ("8.0", "kernel: 8.0 is newer than the newest release hotmem models (7.3)"),
    ("6.20", "kernel: 6.20 was never released (6.x ends at 6.19); the newest release "
             "hotmem models is 7.3"),
    ("5.20", "kernel: 5.20 was never released (5.x ends at 5.19); the newest release "
             "hotmem models is 7.3"),
    ("4.13", "kernel: 4.13 is older than the eras hotmem models (4.14 .. 7.3)"),
])
def test_unknown_or_future_release_is_refused(bad, why):
    with pytest.raises(ConfigError, match=re.escape(why)):
        Kernel.parse(bad)


@pytest.mark.parametrize("good, release", [("6.13", "6.13"), ("6.19", "6.19"), ("7.0", "7.0"),
                                           ("7.3", "7.3"), ("7.3.4+deb13-amd64", "7.3")])
def test_releases_up_to_7_3_are_accepted(good, release):
    assert str(Kernel.parse(good)) == release


# ---------------------------------------------------------------- 6.13

def test_6_13_zoneinfo_pcp_high_min_high_max():
    pcp612 = ("  pagesets\n    cpu: 0\n              count: 0\n              high:  0\n"
              "              batch: 0\n  vm stats threshold: 0\n")
    pcp613 = ("  pagesets\n    cpu: 0\n              count:    0\n              high:     0\n"
              "              batch:    0\n              high_min: 0\n"
              "              high_max: 0\n  vm stats threshold: 0\n")
    assert pcp612 in section(procfs.zoneinfo(movable("6.12")), "Movable")
    assert pcp613 in section(procfs.zoneinfo(movable("6.13")), "Movable")
    assert not Kernel.parse("6.12").zoneinfo_pcp_high_min_max
    assert Kernel.parse("6.13").zoneinfo_pcp_high_min_max


# ---------------------------------------------------------------- 6.14

def test_6_14_default_online_type_from_build_config():
    """Upstream 6.14, but already in Debian's 6.12.117 (the 6.12 era)."""
    assert not Kernel.parse("6.11").mhp_default_online_type_config
    assert Kernel.parse("6.12").mhp_default_online_type_config


# ---------------------------------------------------------------- 6.15

def test_6_15_nr_free_pages_blocks():
    """Free pages in blocks of pageblock order (9) or more: all 32256 free
    pages of the block, then 31744 once a 1-page allocation splits an order-9
    block into orders 0..8 (511 pages)."""
    m = movable("6.15")
    assert "      nr_free_pages 32256\n      nr_free_pages_blocks 32256\n" in \
        section(procfs.zoneinfo(m), "Movable")
    m.alloc(1, zone="Movable", placement="lowest")
    assert "      nr_free_pages 32255\n      nr_free_pages_blocks 31744\n" in \
        section(procfs.zoneinfo(m), "Movable")
    assert "nr_free_pages_blocks" not in procfs.zoneinfo(movable("6.14"))


def test_6_15_nr_free_pages_blocks_leaves_out_isolated_blocks():
    """An isolated pageblock's free pages count in neither NR_FREE_PAGES nor
    NR_FREE_PAGES_BLOCKS (account_freepages, __add_to_free_list)."""
    m = movable("6.15")
    z = m.zone_by_name("Movable")
    assert procfs.zone_nr_free_pages_blocks(m, z) == 32256
    m.pages.isolate(0x100000 + 0x200, 0x100000 + 0x400)   # memory32's 2nd pageblock
    assert procfs.zone_nr_free_pages(m, z) == 32256 - 512
    assert procfs.zone_nr_free_pages_blocks(m, z) == 32256 - 512


def test_6_15_nr_balloon_pages():
    def head(k):
        text = procfs.zoneinfo(movable(k))
        return text[:text.index("  pages free")]
    assert "      nr_balloon_pages 0\n" in head("6.15")
    assert "nr_balloon_pages" not in head("6.14")


# ---------------------------------------------------------------- 6.16

def test_6_16_nr_bounce_removed():
    assert "      nr_mlock     0\n      nr_bounce    0\n      nr_zspages   0\n" in \
        section(procfs.zoneinfo(movable("6.15")), "Movable")
    assert "      nr_mlock     0\n      nr_zspages   0\n" in \
        section(procfs.zoneinfo(movable("6.16")), "Movable")


def test_6_16_memory_block_advise_max_size():
    assert not Kernel.parse("6.15").memory_block_advise_max_size
    assert Kernel.parse("6.16").memory_block_advise_max_size


# ---------------------------------------------------------------- 6.17

def test_6_16_kpageflags_of_pfns_without_online_memmap_read_zero():
    """memory33 hot-added but never onlined; memory32 offlined; both removed."""
    for k, absent in (("6.15", 1 << 20), ("6.16", 0)):
        m = Machine(arch="x86_64", kernel=k, boot_memory="2G", memmap_on_memory="y")
        m.add(DIMM, "256M")
        m.online(32, "online_movable")
        flags = kpageflags(m, 0x100000, 0x100000 + 2 * BLOCK)
        assert int(flags[0]) == 1 << 37                       # memory32's own memmap
        assert set(flags[BLOCK:].tolist()) == {absent}        # memory33: offline
        m.offline(32)
        assert set(kpageflags(m, 0x100000, 0x100000 + BLOCK).tolist()) == {absent}
        m.remove(DIMM, "256M")          # max_pfn stays: the range is still in the file
        assert set(kpageflags(m, 0x100000, 0x100000 + 2 * BLOCK).tolist()) == {absent}


def test_6_19_zoneinfo_highatomic():
    tail = ("  node_unreclaimable:  0\n  start_pfn:           1048576\n"
            "  reserved_highatomic: 0\n  free_highatomic:     0\n")
    assert section(procfs.zoneinfo(movable("6.19")), "Movable").endswith(tail)
    assert section(procfs.zoneinfo(movable("6.18")), "Movable").endswith(
        "  node_unreclaimable:  0\n  start_pfn:           1048576\n")


def test_6_17_isolation_as_a_standalone_pageblock_bit():
    assert not Kernel.parse("6.16").isolate_standalone_bit
    assert Kernel.parse("6.17").isolate_standalone_bit
    assert not Kernel.parse("6.16").online_isolates_movable
    assert Kernel.parse("6.17").online_isolates_movable


# ---------------------------------------------------------------- 6.19

def test_6_19_no_prepare_online_notifier():
    assert not Kernel.parse("6.18").no_prepare_online_notifier
    assert Kernel.parse("6.19").no_prepare_online_notifier


# ---------------------------------------------------------------- 7.x

def test_7_2_pagetypeinfo_cma_column_follows_debian_config():
    """Debian enabled CONFIG_CMA for every arch in 7.2.2-1~exp1, riscv64 in
    7.1~rc3-1~exp1; arm64 and ppc64el have it in 6.12."""
    cols = "Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic"
    assert f"{cols}      Isolate \n" in procfs.pagetypeinfo(movable("7.1"))
    text = procfs.pagetypeinfo(movable("7.2"))
    assert f"{cols}          CMA      Isolate \n" in text
    assert ("Node    0, zone  Movable, type          CMA" + "      0" * 11 + " \n") in text
    assert "Node 0, zone  Movable            1           63            0            0" \
           "            0            0 \n" in text
    assert "          CMA      Isolate \n" in procfs.pagetypeinfo(movable("6.12", "arm64-4k"))
    assert "          CMA      Isolate \n" in procfs.pagetypeinfo(movable("7.1", "riscv64"))
    assert "          CMA      Isolate \n" not in procfs.pagetypeinfo(movable("7.0", "riscv64"))


def node_stats(k):
    return procfs.node_stat_names(Machine(arch="x86_64", kernel=k, boot_memory="2G"))


@pytest.mark.parametrize("release, added, removed", [
    ("6.8", ["pgdemote_kswapd", "pgdemote_direct", "pgdemote_khugepaged"], []),
    ("6.10", ["nr_iommu_pages"], []),
    ("6.13", ["nr_hugetlb"], []),
    ("6.15", ["pgdemote_proactive", "nr_balloon_pages"], []),
    ("6.17", [], ["nr_writeback_temp"]),
    ("6.18", ["pgpromote_candidate_nrl", "nr_kernel_file_pages"], []),
    ("7.0", ["nr_gpu_active", "nr_gpu_reclaim"], []),
    ("7.1", ["nr_vmalloc", "pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged",
             "pgsteal_proactive", "pgsteal_anon", "pgsteal_file", "pgscan_kswapd",
             "pgscan_direct", "pgscan_khugepaged", "pgscan_proactive", "pgscan_anon",
             "pgscan_file", "pgrefill"], []),
    ("7.3", ["pgrotate_anon", "pgrotate_file"], []),
])
def test_per_node_stats_by_release(release, added, removed):
    """Each release adds and removes exactly these per-node counters."""
    k = Kernel.parse(release)
    before = node_stats("6.19" if (k.major, k.minor) == (7, 0) else f"{k.major}.{k.minor - 1}")
    now = node_stats(release)
    assert [x for x in now if x not in before] == added
    assert [x for x in before if x not in now] == removed


def test_7_3_per_node_stats():
    n612, n72, n73 = node_stats("6.12"), node_stats("7.2"), node_stats("7.3")
    assert (len(n612), len(n72), len(n73)) == (47, 67, 69)
    assert [x for x in n73 if x not in n72] == ["pgrotate_anon", "pgrotate_file"]
    assert [x for x in n612 if x not in n73] == ["nr_writeback_temp"]


def test_7_3_zone_section_keys_in_order():
    """The whole Movable section of 7.3, key by key (values: hotmem's model,
    0 for what it does not model)."""
    m = movable("7.3")
    mov = m.zone_by_name("Movable")
    zone_stats = ("nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
                  "nr_zone_active_file", "nr_zone_unevictable", "nr_zone_write_pending",
                  "nr_mlock", "nr_zspages", "nr_free_cma", "nr_unaccepted", "numa_hit",
                  "numa_miss", "numa_foreign", "numa_interleave", "numa_local", "numa_other")
    assert section(procfs.zoneinfo(m), "Movable") == (
        "Node 0, zone  Movable\n  pages free     32256\n        boost    0\n"
        f"        min      {mov.wmark_min}\n        low      {mov.wmark_low}\n"
        f"        high     {mov.wmark_high}\n        promo    {mov.wmark_promo}\n"
        "        spanned  32768\n        present  32768\n        managed  32256\n"
        "        cma      0\n        protection: (0, 0, 0, 0, 0)\n"
        "      nr_free_pages 32256\n      nr_free_pages_blocks 32256\n"
        + "".join(f"      {n:<12} 0\n" for n in zone_stats)
        + "  pagesets\n    cpu: 0\n              count:    0\n              high:     0\n"
        "              batch:    0\n              high_min: 0\n              high_max: 0\n"
        "  vm stats threshold: 0\n  node_unreclaimable:  0\n"
        "  start_pfn:           1048576\n  reserved_highatomic: 0\n  free_highatomic:     0\n")
    assert mov.wmark_min == 32
    assert np.all(kpageflags(m, 0x100000, 0x100200) == 1 << 37)


def test_7_3_driver_paths():
    """kmem's explicit online type and multi-range offline-and-remove (7.3)."""
    for name in ("driver_managed_online_type", "offline_and_remove_ranges"):
        assert not getattr(Kernel.parse("7.2"), name)
        assert getattr(Kernel.parse("7.3"), name)
