"""The memory map behind `hotmem plot`, and the PNG itself."""
import numpy as np

from hotmem.machine import Machine
from hotmem.views.plot import CATEGORIES, memory_map, plot_machine


def test_memory_map_categories(tmp_path):
    m = Machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    m.add(0x100000000, "256M")
    m.online(32, "online_movable")
    m.online(33, "online")
    m.alloc(1, kind="unmovable", zone="Normal", placement="lowest")   # pfn 0x108200
    m.alloc(1, kind="movable", zone="Movable", placement="lowest")    # pfn 0x100200
    cat, per = memory_map(m, pixels=m.max_pfn() // 512)
    assert per == 512                       # one pixel per pageblock here
    name = {i: c for i, c in enumerate(CATEGORIES)}
    px = lambda pfn: name[int(cat[pfn // per])]   # noqa: E731
    assert px(0x100000) == "vmemmap" and px(0x108000) == "vmemmap"
    assert px(0x100200) == "movable" and px(0x100400) == "free"
    assert px(0x108200) == "unmovable"
    assert px(0x80000) == "absent"          # the PCI hole below 4 GiB
    assert px(16 << 8) == "reserved"        # the kernel image at 16 MiB
    m.offline(32)
    cat, per = memory_map(m, pixels=m.max_pfn() // 512)
    assert name[int(cat[0x100000 // per])] == "offline"
    out = tmp_path / "map.png"
    plot_machine(m, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.count_nonzero(cat == CATEGORIES.index("free")) > 0
