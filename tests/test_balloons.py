"""Balloon inflation and deflation of the Hyper-V and Xen drivers
(drivers/hv/hv_balloon.c balloon_up / balloon_down, drivers/xen/balloon.c
decrease_reservation / increase_reservation; docs/drivers.md §6 and §7),
with the kernel's numbers: pages from the kernel zones down to the low,
then the min watermark, PageOffline, out of managed, NR_BALLOON_PAGES (6.15)."""
import json

import numpy as np
import pytest

from hotmem import invariants
from hotmem.cli import main
from hotmem.compare import compare, format_compare
from hotmem.constants import ZONE_NORMAL
from hotmem.errors import ConfigError, HotplugError
from hotmem.machine import Machine
from hotmem.page_alloc import _kernel_pick, _unmovable_pick, alloc_noretry, lowmem_reserve
from hotmem.report import format_summary
from hotmem.scenario import loads_scenario, run_scenario
from hotmem.views.kpageflags import kpageflags
from hotmem.views.meminfo import meminfo_values
from hotmem.views.procfs import buddyinfo, pagetypeinfo, zoneinfo

MiB = 1 << 20
OFFLINE = 0x800000          # KPF_OFFLINE alone: no LRU, no anon, no slab
HV = {"name": "hv", "driver": "hv-balloon", "start": "0x140000000", "size": "256M",
      "backed": "256M"}
XEN = {"name": "xen", "driver": "xen-balloon", "start": "0x140000000", "size": "256M",
       "backed": "0"}


def zone_pages(m, name):
    """(present, managed, free) of a zone."""
    z = m.zone_by_name(name)
    nf = m.pages.nr_free[z.zid]
    free = int((nf.sum(axis=0) << np.arange(nf.shape[1])).sum())
    return z.present_pages, z.managed_pages, free


def order10(m, name):
    return int(m.pages.nr_free[m.zone_by_name(name).zid].sum(axis=0)[10])


def node_stat(m, name):
    line = [ln for ln in zoneinfo(m).splitlines() if ln.strip().startswith(name + " ")]
    return int(line[0].split()[1]) if line else None


def hv_machine(kernel="6.12", backend="fast"):
    m = Machine("x86_64", kernel=kernel, boot_memory="4G", auto_online_blocks="online",
                backend=backend)
    m.attach(dict(HV))
    return m


# ---------------------------------------------------------------- Hyper-V

@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.3"])
def test_hv_balloon_up_takes_2m_blocks_and_balloon_down_restores(kernel):
    """128 MiB of balloon: 64 order-9 allocations, each from the lowest free
    order-10 block of ZONE_NORMAL (boot memory at 4 GiB), whose two pageblocks
    __rmqueue_fallback claims for MIGRATE_UNMOVABLE."""
    m = hv_machine(kernel)
    dev = m.device("hv")
    before = (zone_pages(m, "Normal"), zone_pages(m, "DMA32"), buddyinfo(m))
    assert before[0] == (327680, 311296, 310272) and order10(m, "Normal") == 303
    info = meminfo_values(m)
    assert m.resize("hv", "128M") == []
    assert zone_pages(m, "Normal") == (327680, 311296 - 32768, 310272 - 32768)
    assert zone_pages(m, "DMA32") == before[1]
    assert order10(m, "Normal") == 303 - 32
    assert len(dev.balloon) == 64 and {len(r) for r in dev.balloon} == {512}
    assert [int(r[0]) for r in dev.balloon[:3]] == [0x100400, 0x100600, 0x100800]
    pfns = dev.ballooned_pfns()
    assert (int(pfns.min()), int(pfns.max())) == (0x100400, 0x1083FF)
    assert set(kpageflags(m, 0x100400, 0x108400).tolist()) == {OFFLINE}
    after = meminfo_values(m)
    assert after["MemTotal"] == info["MemTotal"] - 131072
    assert after["MemFree"] == info["MemFree"] - 131072
    rep = dev.report(m)
    assert (rep["ballooned_pages"], rep["held_bytes"], rep["backed_bytes"]) == (
        32768, 128 * MiB, 256 * MiB)
    if kernel == "7.3":   # NR_BALLOON_PAGES, 6.15
        assert after["Balloon"] == 131072 and node_stat(m, "nr_balloon_pages") == 32768
    else:
        assert "Balloon" not in after and node_stat(m, "nr_balloon_pages") is None
    # the ballooned pages pin memory33 (the boot block at 0x108000000)
    with pytest.raises(HotplugError) as e:
        m.offline(33)
    assert e.value.errno == "EBUSY" and "PageOffline page at pfn 0x108000" in e.value.message
    invariants.check(m)

    assert m.resize("hv", "256M") == []
    assert (zone_pages(m, "Normal"), zone_pages(m, "DMA32"), buddyinfo(m)) == before
    assert meminfo_values(m) == info and dev.balloon == []
    # the claimed pageblocks stay MIGRATE_UNMOVABLE: free pages return to the
    # free list of their pageblock's type
    rows = {" ".join(ln.split()[3:6]): ln.split()[-1] for ln in pagetypeinfo(m).splitlines()
            if ln.startswith("Node    0, zone   Normal, type")}
    assert rows["Normal, type Unmovable"] == "32" and rows["Normal, type Movable"] == "271"
    m.offline(33)
    invariants.check(m)


def test_hv_balloon_up_falls_back_to_single_pages():
    """1000 pages: one 2 MiB block (alloc_unit 512), then 488 (< 512 left)
    single pages, taken from the unmovable order-9 half the block claim left."""
    m = hv_machine()
    dev = m.device("hv")
    m.resize("hv", 256 * MiB - 1000 * 4096)
    assert [(int(r[0]), len(r)) for r in dev.balloon[:2]] == [(0x100400, 512), (0x100600, 1)]
    assert len(dev.balloon) == 489
    assert np.array_equal(np.sort(dev.ballooned_pfns()), np.arange(0x100400, 0x100400 + 1000))
    # balloon_down: the most recent ranges first (the 488 single pages, then
    # 24 pages off the end of the 2 MiB range)
    m.resize("hv", 256 * MiB - 488 * 4096)
    assert len(dev.balloon) == 1 and dev.nr_ballooned() == 488
    assert np.array_equal(np.sort(dev.ballooned_pfns()), np.arange(0x100400, 0x100400 + 488))
    invariants.check(m)


def test_hv_balloon_floor_makes_a_partial_balloon():
    """balloon_up() caps the request at si_mem_available() less
    compute_balloon_floor(); the guest reports what it got."""
    m = Machine("x86_64", kernel="6.12", boot_memory="512M", auto_online_blocks="online")
    m.attach({**HV, "size": "1G", "backed": "1G"})
    dev = m.device("hv")
    total = m.totalram_pages()
    avail = meminfo_values(m)["MemAvailable"] // 4
    assert (total, avail) == (365617, 333743)
    floor = (104 << 8) + (total >> 3)           # 512 MiB <= totalram < 2 GiB
    assert floor == 72326
    m.resize("hv", 0)
    assert dev.nr_ballooned() == avail - floor == 261417
    assert dev.held_pages(m) == 262144 - 261417
    assert dev.notes == ["balloon_up: the host asked for 262144 pages, 261417 ballooned "
                         "(balloon floor reached: MemAvailable 333743, floor 72326)"]
    # 2 MiB blocks from ZONE_NORMAL until an order-9 request no longer passes
    # its low watermark, then from ZONE_DMA32
    normal, dma32 = m.zone_by_name("Normal"), m.zone_by_name("DMA32")
    assert zone_pages(m, "Normal") == (262144, 262144 - 243418, normal.wmark_low)
    assert zone_pages(m, "DMA32") == (126941, 99633 - 17999, 99121 - 17999)
    assert normal.wmark_low == 15142 and dma32.wmark_low == 5755
    invariants.check(m)


def test_hv_balloon_never_takes_zone_movable():
    """GFP_HIGHUSER has no __GFP_MOVABLE: with the hot-added memory in
    ZONE_MOVABLE the balloon drains DMA and DMA32 to their min watermark
    (plus DMA's lowmem reserve) and __GFP_NORETRY ends it there."""
    m = Machine("x86_64", kernel="6.12", boot_memory="1G", auto_online_blocks="online_movable")
    m.attach({**HV, "size": "2G", "backed": "2G"})
    dev = m.device("hv")
    m.resize("hv", "1G")
    assert zone_pages(m, "Movable") == (524288, 524288, 524288)
    dma, dma32 = m.zone_by_name("DMA"), m.zone_by_name("DMA32")
    assert zone_pages(m, "DMA")[2] == dma.wmark_min + 228657 // 256 == 1079
    assert zone_pages(m, "DMA32")[2] == dma32.wmark_min == 11077
    assert dev.nr_ballooned() == 212149
    assert sum(len(r) == 512 for r in dev.balloon) == 413
    assert sum(len(r) == 1 for r in dev.balloon) == 693
    assert dev.notes[0].startswith("balloon_up: the host asked for 262144 pages, 212149 "
                                   "ballooned (allocation failed (__GFP_NORETRY)")
    invariants.check(m)


def test_hv_balloon_eras_and_arches():
    # before 5.11 the driver left managed alone ("hv_balloon: do
    # adjust_managed_page_count() when ballooning/un-ballooning")
    m = hv_machine("5.10")
    m.resize("hv", "128M")
    assert zone_pages(m, "Normal")[1:] == (311296, 310272 - 32768)
    m.resize("hv", "256M")
    assert zone_pages(m, "Normal")[1:] == (311296, 310272)
    old = hv_machine("4.19")
    with pytest.raises(ConfigError, match="modelled from 5.1"):
        old.resize("hv", "128M")
    # hot_add_enabled() / ballooning_enabled(), 5.18
    arm = Machine("arm64-4k", kernel="6.12", boot_memory="2G")
    with pytest.raises(HotplugError) as e:
        arm.attach({**HV, "start": "0x100000000"})
    assert e.value.errno == "EOPNOTSUPP"
    k64 = Machine("arm64-16k", kernel="5.15", boot_memory="2G")
    k64.attach({**HV, "start": "0x100000000", "size": "512M", "backed": "512M"})
    with pytest.raises(HotplugError) as e:
        k64.resize("hv", "256M")
    assert e.value.errno == "EOPNOTSUPP"


def test_hv_balloon_bad_sizes():
    m = hv_machine()
    with pytest.raises(ConfigError, match="device hv: size .* whole number of 4 KiB pages"):
        m.resize("hv", 1000)
    with pytest.raises(HotplugError) as e:
        m.resize("hv", "512M")
    assert e.value.errno == "EINVAL"
    with pytest.raises(ConfigError, match="device hv: backed"):
        Machine("x86_64", boot_memory="4G").attach({**HV, "backed": "lots"})
    assert m.device("hv").balloon == []


# ---------------------------------------------------------------- Xen

def xen_machine(kernel="7.3", backend="fast"):
    m = Machine("x86_64", kernel=kernel, boot_memory="4G", auto_online_blocks="online",
                backend=backend)
    m.attach(dict(XEN))
    return m


def test_xen_balloon_list_order_and_inflation():
    """xen_online_page() appends every page at the list head in pfn order, so
    increase_reservation() hands back the highest pfns first; inflated pages
    land at the head in allocation order and come back first."""
    m = xen_machine()
    dev = m.device("xen")
    top = 0x140000000 // 4096 + 65536
    assert dev.nr_ballooned() == 65536 and dev.held_pages(m) == 0
    assert meminfo_values(m)["Balloon"] == 262144 and node_stat(m, "nr_balloon_pages") == 65536
    managed = zone_pages(m, "Normal")[1]
    m.resize("xen", 1000 * 4096)
    f = kpageflags(m, top - 65536, top)
    assert np.array_equal(np.flatnonzero(f != OFFLINE), np.arange(65536 - 1000, 65536))
    assert zone_pages(m, "Normal")[1] == managed + 1000
    assert dev.report(m)["backed_bytes"] == 1000 * 4096

    # inflate 1000 pages: from the lowest order-10 block of ZONE_NORMAL, in
    # two passes of decrease_reservation (512 + 488)
    m.resize("xen", 0)
    assert zone_pages(m, "Normal")[1] == managed
    assert [len(s) for s in dev.balloon[-2:]] == [512, 488]
    assert int(dev.balloon[-1][-1]) == 0x100600 and int(dev.balloon[-2][-1]) == 0x100400
    assert set(kpageflags(m, 0x100400, 0x100400 + 1000).tolist()) == {OFFLINE}
    assert dev.nr_ballooned() == 65536 and node_stat(m, "nr_balloon_pages") == 65536
    with pytest.raises(HotplugError) as e:
        m.offline(32)
    assert e.value.errno == "EBUSY"

    # 2000 pages back: the 1000 inflated ones, then 1000 more of the region
    m.resize("xen", 2000 * 4096)
    assert OFFLINE not in set(kpageflags(m, 0x100400, 0x100400 + 1000).tolist())
    f = kpageflags(m, top - 65536, top)
    assert np.array_equal(np.flatnonzero(f != OFFLINE), np.arange(65536 - 2000, 65536))
    assert dev.nr_ballooned() == 63536 and dev.held_pages(m) == 2000
    assert zone_pages(m, "Normal")[1] == managed + 2000
    invariants.check(m)


@pytest.mark.parametrize("kernel, avail, dma32_free", [("6.12", 153444, 6170),
                                                        ("7.3", 151396, 6170 + 262144 // 256)])
def test_xen_balloon_stops_at_mem_available(kernel, avail, dma32_free):
    """balloon_thread(): n_pages = min(-credit, si_mem_available()); the rest
    of the target stays pending.  xen_online_page() put every page of the
    block in the balloon, so the online left Normal's managed pages at 0; the
    populate brought them back through adjust_managed_page_count(), which
    updates lowmem_reserve and totalreserve_pages only from 6.14: on 6.12
    DMA32 and DMA reserve nothing against Normal (MemAvailable 2048 pages
    higher, DMA32 down to its min), on 7.3 262144 / 256 pages each."""
    m = Machine("x86_64", kernel=kernel, boot_memory="512M", auto_online_blocks="online")
    m.attach({**XEN, "size": "1G", "backed": "1G"})
    dev = m.device("xen")
    m.alloc(200000, placement="lowest")
    assert meminfo_values(m)["MemAvailable"] // 4 == avail
    m.resize("xen", 0)
    assert dev.nr_ballooned() == avail and dev.held_pages(m) == 262144 - avail
    # ZONE_NORMAL (the hot-added memory, onlined with managed 0: watermarks 0)
    # empties; DMA32 and DMA down to min plus the lowmem reserve
    assert zone_pages(m, "Normal") == (262144, 200000, 0)
    assert zone_pages(m, "DMA32")[2] == dma32_free
    assert zone_pages(m, "DMA")[2] == 3840 - (avail - 62144 - (95537 - dma32_free))
    assert dev.notes == [f"balloon target 0 pages not reached: {262144 - avail} pages still to "
                         "balloon (BP_EAGAIN, then BP_ECANCELED after max_retry_count 4 retries: "
                         "tried again at the next resize)"]
    invariants.check(m)


def test_xen_balloon_populates_blocks_onlined_later():
    m = Machine("x86_64", kernel="6.12", boot_memory="4G")
    m.attach({**XEN, "backed": "8M"})
    dev = m.device("xen")
    assert dev.nr_ballooned() == 0 and dev.held_pages(m) == 0
    m.online(40)
    assert dev.held_pages(m) == 2048 and dev.nr_ballooned() == 32768 - 2048
    m.online(41)      # xen_online_page(): all of it to the balloon, the target is met
    assert dev.held_pages(m) == 2048 and dev.nr_ballooned() == 65536 - 2048
    invariants.check(m)


def test_xen_offline_and_online_leave_current_pages_alone():
    """Only increase/decrease_reservation move balloon_stats.current_pages: a
    block whose pages were all handed back can go offline, and when it comes
    back xen_online_page() puts it all in the balloon, where it stays until
    the target grows."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online")
    m.attach({**XEN, "backed": "128M"})
    dev = m.device("xen")
    normal = m.zone_by_name("Normal")
    assert (dev.nr_ballooned(), dev.held_pages(m), normal.managed_pages) == (32768, 32768, 278528)
    m.offline(41)                          # the populated block: the highest pfns
    assert (dev.held_pages(m), normal.managed_pages) == (32768, 245760)
    assert dev.report(m)["backed_bytes"] == 0
    m.online(41)
    assert (dev.nr_ballooned(), dev.held_pages(m), normal.managed_pages) == (65536, 32768, 245760)
    m.resize("xen", "136M")                # 2048 more: the top of memory41 again
    assert (dev.nr_ballooned(), dev.held_pages(m), normal.managed_pages) == (63488, 34816, 247808)
    f = kpageflags(m, 41 * 32768, 42 * 32768)
    assert np.array_equal(np.flatnonzero(f != OFFLINE), np.arange(32768 - 2048, 32768))
    invariants.check(m)


# ---------------------------------------------------------------- both

def _hv_run(backend):
    m = hv_machine("7.3", backend)
    m.alloc(3000, kind="unmovable", placement="kernel")
    m.resize("hv", 256 * MiB - 60000 * 4096)
    m.resize("hv", 256 * MiB - 1000 * 4096)
    m.resize("hv", 256 * MiB - 3000 * 4096)
    return m


def _xen_run(backend):
    m = xen_machine("7.3", backend)
    m.resize("xen", 5000 * 4096)
    m.resize("xen", 1000 * 4096)
    m.resize("xen", 0)
    m.resize("xen", 6000 * 4096)
    return m


@pytest.mark.parametrize("run,name", [(_hv_run, "hv"), (_xen_run, "xen")])
def test_fast_and_reference_backends_agree(run, name):
    fast, ref = run("fast"), run("reference")
    end = fast.kpageflags_end()
    assert np.array_equal(kpageflags(fast, 0, end), kpageflags(ref, 0, end))
    for view in (buddyinfo, zoneinfo, pagetypeinfo, meminfo_values):
        assert view(fast) == view(ref)
    a, b = fast.device(name), ref.device(name)
    assert len(a.balloon) == len(b.balloon)
    assert all(np.array_equal(x, y) for x, y in zip(a.balloon, b.balloon, strict=True))
    assert a.report(fast) == b.report(ref)
    invariants.check(fast)
    invariants.check(ref)


SCENARIO = '''
[machine]
arch = "x86_64"
kernel = "7.3"
boot_memory = "4G"
auto_online_blocks = "online"
on_error = "continue"
[[device]]
name = "hv"
driver = "hv-balloon"
start = "0x140000000"
size = "256M"
backed = "256M"
[[step]]
op = "attach"
device = "hv"
[[step]]
op = "resize"
device = "hv"
size = "128M"
[[step]]
op = "offline"
blocks = [33]
[[step]]
op = "resize"
device = "hv"
size = "256M"
[[step]]
op = "offline"
blocks = [33]
'''


def test_balloon_scenario_through_hotmem_run(tmp_path, capsys):
    sc = loads_scenario(SCENARIO)
    m, res = run_scenario(sc)
    assert [r.result for r in res] == ["ok", "ok", "EBUSY", "ok", "ok"]
    m.resize("hv", "200M")
    assert "  balloon: 14336 pages; the guest holds 204800 kB of the device" in \
        format_summary(m).splitlines()
    p = tmp_path / "b.toml"
    p.write_text(SCENARIO.replace("size = \"256M\"\n[[step]]\nop = \"offline\"\nblocks = [33]\n",
                                  "size = \"192M\"\n"))
    assert main(["run", str(p), "--json"]) == 1        # the offline is EBUSY
    rep = json.loads(capsys.readouterr().out)
    dev = rep["devices"][0]
    assert (dev["ballooned_pages"], dev["held_bytes"]) == (16384, 192 * MiB)
    assert [s["result"] for s in rep["steps"]] == ["ok", "ok", "EBUSY", "ok"]
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENARIO.replace('size = "128M"', 'size = "1000"'))
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "step 1 (resize)" in err and "size (0x3e8)" in err and "Traceback" not in err


def test_compare_shows_the_balloon():
    sc = loads_scenario(SCENARIO.split("[[step]]\nop = \"offline\"")[0])
    table = format_compare(compare(sc, ["mainline", "none"])).splitlines()
    row = [ln for ln in table if ln.startswith("device hv ballooned pages")]
    assert row and row[0].split()[-2:] == ["32768", "32768"]


def _fragmented(backend):
    m = Machine("x86_64", kernel="6.12", boot_memory="512M", backend=backend)
    m.alloc(95000, placement="lowest")
    m.free(20000, seed=3)
    return m, alloc_noretry(m, 1500, 3)


def test_alloc_noretry_small_orders_on_fragmented_zones():
    """Order-3 unmovable requests (below pageblock order) on a fragmented
    zone: the largest fallback blocks first, whole pageblocks claimed while
    they last, then the try_to_claim_block rule per pageblock; the requests
    stop when no free block of order 3 is left (__zone_watermark_ok)."""
    (fast, a), (ref, b) = _fragmented("fast"), _fragmented("reference")
    assert len(a) == 995 and np.array_equal(a, b)
    assert not (a % 8).any() and len(np.unique(a)) == 995
    # DMA32 has no free block of order 3 or more left; DMA keeps its min
    # watermark plus the lowmem reserve against ZONE_NORMAL
    dma, dma32 = fast.zone_by_name("DMA"), fast.zone_by_name("DMA32")
    assert not fast.pages.nr_free[dma32.zid][:, 3:].any()
    free = zone_pages(fast, "DMA")[2]
    mark = dma.wmark_min + lowmem_reserve(fast, dma)[ZONE_NORMAL]
    assert (mark, free) == (190 + 389, 579)     # free - 7 <= mark: the next request fails
    assert pagetypeinfo(fast) == pagetypeinfo(ref) and buddyinfo(fast) == buddyinfo(ref)
    invariants.check(fast)
    invariants.check(ref)


@pytest.mark.parametrize("case", range(4))
def test_whole_block_claims_match_the_page_by_page_model(case):
    """alloc_noretry's order-0 requests take whole fallback blocks of
    pageblock order in one step; the pages, the pageblock types and the free
    lists are those of _kernel_pick's request-by-request __rmqueue."""
    def state():
        m = Machine("x86_64", kernel="6.12", boot_memory=("512M", "1G")[case % 2])
        if case >= 2:
            m.alloc(20000 + 1000 * case, placement="lowest")
            m.free(5000 + 300 * case, seed=case)
            m.alloc(777 * case, kind="unmovable", placement="kernel")
        return m
    a, b = state(), state()
    za, zb = a.zone_by_name("DMA32"), b.zone_by_name("DMA32")
    n = zone_pages(a, "DMA32")[2] - 4000
    pa = _unmovable_pick(a, za, n)
    pb, claims = _kernel_pick(b, zb, n, "unmovable")
    for s, e, mt in claims:
        b.pages.set_migratetype(s, e, mt)
    b.pages.take_pages(np.sort(pb))
    assert len(pa) == n and np.array_equal(pa, pb)
    assert pagetypeinfo(a) == pagetypeinfo(b) and buddyinfo(a) == buddyinfo(b)


def test_hv_balloon_deflates_before_the_host_backs_more():
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online")
    m.attach({**HV, "backed": "128M"})            # memory41 unbacked: PageOffline
    dev = m.device("hv")
    normal = m.zone_by_name("Normal")
    managed = normal.managed_pages
    m.resize("hv", "64M")
    assert (dev.nr_ballooned(), normal.managed_pages) == (16384, managed - 16384)
    m.resize("hv", "200M")                        # 16384 pages back, then 72 MiB backed
    assert (dev.nr_ballooned(), dev.backed, dev.held_pages(m)) == (0, 200 * MiB, 51200)
    assert normal.managed_pages == managed + 18432
    f = kpageflags(m, 41 * 32768, 42 * 32768)
    assert np.array_equal(np.flatnonzero(f == OFFLINE), np.arange(18432, 32768))
    invariants.check(m)


def test_nr_balloon_pages_per_node():
    """NR_BALLOON_PAGES is a node counter: the pages count on the node they
    were allocated from (node 0, where the work runs), not the device's."""
    m = Machine("x86_64", kernel="7.3", boot_memory="4G", nr_nodes=2,
                auto_online_blocks="online")
    m.attach({**HV, "start": "0x240000000", "size": "1G", "backed": "1G", "node": 1})
    dev = m.device("hv")
    m.resize("hv", "512M")
    assert (dev.nr_balloon_pages(m, 0), dev.nr_balloon_pages(m, 1)) == (131072, 0)
    stats = [ln.split()[1] for ln in zoneinfo(m).splitlines()
             if ln.strip().startswith("nr_balloon_pages ")]
    assert stats == ["131072", "0"] and meminfo_values(m)["Balloon"] == 524288
    assert zone_pages(m, "Normal")[1] == 245760 - 131072
