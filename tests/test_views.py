"""The kernel formats, byte for byte."""
import os
import platform
import re
from pathlib import Path

import pytest

from hotmem.machine import Machine
from hotmem.views import procfs, sysfs
from hotmem.views.kpageflags import decode, kpageflags

DIMM = 0x100000000


@pytest.fixture
def m():
    m = Machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(DIMM, "1G")
    m.online(32, "online_movable")
    m.online(34, "online")
    return m


def test_buddyinfo_lines(m):
    lines = procfs.buddyinfo(m).splitlines(keepends=True)
    assert lines[-1] == ("Node 0, zone  Movable " + "     0 " * 9 + "     1 " + "    31 " + "\n")
    assert lines[-2].startswith("Node 0, zone   Normal      0")
    assert [line[:21] for line in lines] == ["Node 0, zone      DMA", "Node 0, zone    DMA32",
                                             "Node 0, zone   Normal", "Node 0, zone  Movable"]


ZONE_STATS_612 = ("nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
                  "nr_zone_active_file", "nr_zone_unevictable", "nr_zone_write_pending",
                  "nr_mlock", "nr_bounce", "nr_zspages", "nr_free_cma", "nr_unaccepted",
                  "numa_hit", "numa_miss", "numa_foreign", "numa_interleave", "numa_local",
                  "numa_other")


def test_zoneinfo_movable_block(m):
    text = procfs.zoneinfo(m)
    block = text[text.index("Node 0, zone  Movable"):text.index("Node 0, zone   Device")]
    mov = m.zone_by_name("Movable")
    assert block == (
        "Node 0, zone  Movable\n  pages free     32256\n        boost    0\n"
        f"        min      32\n        low      {mov.wmark_low}\n"
        f"        high     {mov.wmark_high}\n"
        f"        promo    {mov.wmark_promo}\n"
        "        spanned  32768\n        present  32768\n        managed  32256\n"
        "        cma      0\n        protection: (0, 0, 0, 0, 0)\n"
        "      nr_free_pages 32256\n"
        + "".join(f"      {name:<12} 0\n" for name in ZONE_STATS_612)
        + "  pagesets\n    cpu: 0\n              count: 0\n              high:  0\n"
        "              batch: 0\n  vm stats threshold: 0\n"
        "  node_unreclaimable:  0\n"
        "  start_pfn:           1048576\n")
    # an empty zone stops after its protection line; 6.1 has no promo line
    assert text.endswith("        protection: (0, 0, 0, 0, 0)\n")
    m61 = Machine(arch="x86_64", kernel="6.1", boot_memory="2G")
    assert "\n        promo " not in procfs.zoneinfo(m61)


def test_zoneinfo_per_node_stats_in_first_populated_zone(m):
    text = procfs.zoneinfo(m)
    assert text.count("  per-node stats\n") == 1
    assert text.startswith("Node 0, zone      DMA\n  per-node stats\n"
                           "      nr_inactive_anon 0\n      nr_active_anon 0\n")
    head = text[:text.index("  pages free")]
    assert len(head.splitlines()) == 2 + 47          # 6.12: 47 node counters
    assert "      nr_writeback_temp 0\n" in head and "nr_balloon_pages" not in head


def test_zoneinfo_protection_is_lowmem_reserve(m):
    text = procfs.zoneinfo(m)
    dma32 = m.zone_by_name("DMA32")
    normal = m.zone_by_name("Normal")
    movable = m.zone_by_name("Movable")
    want = (f"protection: (0, 0, {normal.managed_pages // 256}, "
            f"{(normal.managed_pages + movable.managed_pages) // 256}, "
            f"{(normal.managed_pages + movable.managed_pages) // 256})")
    seg = text[text.index("zone    DMA32"):text.index("zone   Normal")]
    assert want in seg and dma32.managed_pages


def test_pagetypeinfo(m):
    text = procfs.pagetypeinfo(m)
    assert text.startswith("Page block order: 9\nPages per block:  512\n\n"
                           "Free pages count per migrate type at order       0      1")
    assert ("Node    0, zone  Movable, type      Movable" + "      0" * 9
            + "      1     31 \n") in text
    assert ("Number of blocks type     Unmovable      Movable  Reclaimable   HighAtomic"
            "      Isolate \n") in text
    assert ("Node 0, zone  Movable            1           63            0            0"
            "            0 \n") in text


def test_sysfs_memory(m):
    files = sysfs.memory_tree(m)
    assert files["block_size_bytes"] == "8000000\n"
    assert files["auto_online_blocks"] == "offline\n"
    assert files["memory32/state"] == "online\n" and files["memory32/online"] == "1\n"
    assert files["memory32/phys_index"] == "00000020\n"
    assert files["memory32/valid_zones"] == "Movable\n"
    assert files["memory34/valid_zones"] == "Normal\n"
    assert files["memory33/state"] == "offline\n"
    # between a Movable and a Normal block, intersecting neither span: default first
    assert files["memory33/valid_zones"] == "Normal Movable\n"
    assert files["memory0/valid_zones"] == "none\n"     # DMA + DMA32
    assert files["memory15/valid_zones"] == "DMA32\n"
    assert files["memory35/removable"] == "1\n" and files["memory35/phys_device"] == "0\n"


def test_valid_zones_inside_movable_span():
    m = Machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(DIMM, "384M")
    m.online(32, "online_movable")
    m.online(34, "online_movable")
    assert sysfs.valid_zones(m, 33) == "Movable Normal\n"


def test_kpageflags_decode():
    assert decode(0x2100000400) == ["BUDDY", "RESERVED", "OWNER_PRIVATE"]


def test_kpageflags_covers_up_to_max_pfn(m):
    assert m.max_pfn() == 0x100000 + 8 * 32768
    f = kpageflags(m, 0x100000 - 4, 0x100000 + 8 * 32768 + 100)
    assert len(f) == 8 * 32768 + 4


HOST_BUDDYINFO = re.compile(r"^Node \d+, zone {1,8}\S+ ( *\d+ )+$")


# mm/vmstat.c frag_show_print(): "Node %d, zone %8s " then "%6lu " per order
BUDDYINFO_FIELDS = re.compile(r"^Node (\d+), zone ([ A-Za-z0-9]{8}) ((?:[ \d]{5}\d |\d{7,} )+)$")


def _orders(line: str) -> int:
    m = BUDDYINFO_FIELDS.match(line + " " if not line.endswith(" ") else line)
    assert m, f"not the kernel's buddyinfo layout: {line!r}"
    return len(m.group(3).split())


def test_buddyinfo_layout_is_the_kernels_as_on_this_machine():
    """This machine's own /proc/buddyinfo (read only) and hotmem's follow the
    kernel's printf layout field for field; the number of orders is
    MAX_PAGE_ORDER + 1 of the arch (11 on x86_64 with 4K pages)."""
    host = Path("/proc/buddyinfo").read_text().splitlines()
    assert host
    host_orders = {_orders(line) for line in host}
    assert len(host_orders) == 1
    for arch in ("x86_64", "s390x", "ppc64-radix-64k"):
        m = Machine(arch, boot_memory="2G")
        ours = procfs.buddyinfo(m).splitlines()
        assert ours and {_orders(line) for line in ours} == {m.arch.max_page_order + 1}
    if platform.machine() == "x86_64" and os.sysconf("SC_PAGE_SIZE") == 4096:
        assert host_orders == {11}
