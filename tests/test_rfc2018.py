"""The 2018 RFC design (issue 3): design = "rfc2018" on its 4.20 base.

Numbers come from the RFC's own example (10 GiB on x86_64: 80 sections, head
refcount 80, 40960 vmemmap pages = all of the first block + 8192 pages of the
second) and from the 4.20 online_pages_blocks() rule.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CheckedMachine  # invariants checked after every operation
from hotmem import invariants
from hotmem.cli import main as cli_main
from hotmem.compare import compare, design_overrides, metrics
from hotmem.constants import MEM_OFFLINE, MEM_ONLINE, P_RESERVED, P_VMEMMAP, SECTION_IS_ONLINE
from hotmem.errors import HotplugError
from hotmem.scenario import load_scenario, loads_scenario, run_scenario
from hotmem.views.kpageflags import decode, kpageflags

SCEN = Path(__file__).resolve().parents[1] / "src" / "hotmem" / "scenarios"
B = 0x100000          # pfn of 4 GiB: memory32 on x86_64 (128 MiB blocks)
PPB = 32768           # pages per x86_64 block / section
GIB4 = 0x100000000


def rfc(arch="x86_64", **kw):
    args = dict(design="rfc2018", boot_memory="2G", memmap_on_memory="y", max_memory="16G")
    args.update(kw)
    return CheckedMachine(arch, **args)


@pytest.fixture
def ten_gib():
    m = rfc()
    blocks = m.add(hex(GIB4), "10G")
    return m, blocks


def online_all(m, blocks, kind="online_movable"):
    for b in blocks:
        m.online(b, kind)


def assert_same(a, b, path="snapshot"):
    """Deep equality of Machine.snapshot() values (numpy arrays included)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), path
    else:
        assert a == b, path


def free_blocks(m, s, e):
    heads, orders = m.pages.free_blocks(s, e)
    return [(int(h), int(o)) for h, o in zip(heads, orders, strict=True)]


# ---------------------------------------------------------------- hot-add

def test_10g_add_packs_the_memmap_at_the_start(ten_gib):
    m, blocks = ten_gib
    assert blocks == list(range(32, 112))
    assert m.kernel.major == 4 and m.kernel.minor == 20
    [g] = m.groups.values()
    assert g.design_state.head_pfn == B
    assert g.design_state.head_refcount == 80
    assert g.design_state.nr_sects == 1          # one whole section filled with memmap
    assert g.design_state.vmemmap_pages == 40960
    alt = g.design_state.altmap
    assert (alt.base_pfn, alt.free, alt.alloc, alt.align) == (B, 80 * PPB, 40960, 0)
    # section k's memmap is the k-th PMD leaf (512 pages) of the range
    assert g.design_state.section_memmap == [(B + 512 * k, B + 512 * (k + 1)) for k in range(80)]
    # mark_vmemmap_pages(): base_pfn advances by what each section consumed
    assert g.design_state.flush_log[0] == (B // PPB, B, 512)
    assert g.design_state.flush_log[79] == (B // PPB + 79, B + 79 * 512, 512)
    assert m.design.vmemmap_pages_by_block(m) == {32: 32768, 33: 8192}
    # PageVmemmap = the vmemmap plane + PG_reserved, exactly on those pfns
    for plane in (P_VMEMMAP, P_RESERVED):
        assert m.pages.count(plane, B - 64, B + 80 * PPB) == 40960
        assert m.pages.find_set(plane, B, B + 80 * PPB) == B
        assert m.pages.find_clear(plane, B, B + 80 * PPB) == B + 40960
    assert all(m.blk_state[b] == MEM_OFFLINE for b in blocks)
    assert not m.blk_altmap[blocks].any()  # no per-block (mainline) altmap
    # added, offline: nothing visible in kpageflags yet
    assert set(kpageflags(m, B, B + 40960 + 64).tolist()) == {0x100000}


def test_auto_online_goes_through_the_rfc_online():
    m = rfc(auto_online_blocks="online_movable")
    m.add(hex(GIB4), "256M")
    assert list(m.blk_state[32:34]) == [MEM_ONLINE, MEM_ONLINE]
    g = m.groups[0]
    # 2 sections x 512 memmap pages at the start of memory32
    assert m.design.vmemmap_pages_by_block(m) == {32: 1024}
    assert m.zone_by_name("Movable").present_pages == 2 * PPB - 1024
    assert g.design_state.misaligned == {32: [], 33: []}


# ---------------------------------------------------------------- online

def test_10g_online_accounting_and_buddy_orders(ten_gib):
    m, blocks = ten_gib
    mov = m.zone_by_name("Movable")
    m.online(32, "online_movable")
    # a block made only of memmap: onlined with 0 pages, but online (4.20)
    assert m.blk_state[32] == MEM_ONLINE
    assert (mov.spanned_pages, mov.present_pages, mov.managed_pages) == (PPB, 0, 0)
    assert free_blocks(m, B, B + PPB) == []
    assert m.sec_flags[B // PPB] & SECTION_IS_ONLINE
    online_all(m, blocks[1:])
    assert mov.zone_start_pfn == B
    assert mov.spanned_pages == 80 * PPB == 2621440
    assert mov.present_pages == 80 * PPB - 40960 == 2580480
    assert mov.managed_pages == 2580480
    assert m.groups[0].present_movable_pages == 2580480
    # memory33: 8192 memmap pages, then 24 aligned order-10 blocks
    b33 = B + PPB
    assert free_blocks(m, b33, b33 + PPB) == [(b33 + 8192 + 1024 * k, 10) for k in range(24)]
    for blk in (34, 60, 111):
        s = blk * PPB
        assert free_blocks(m, s, s + PPB) == [(s + 1024 * k, 10) for k in range(32)]
    nf = m.pages.nr_free[mov.zid].sum(axis=0)
    assert nf[10] == 24 + 78 * 32 and nf[:10].sum() == 0
    invariants.check(m)
    assert m.design.misaligned_chunks(m) == {b: [] for b in blocks}


def test_online_scan_ranges(ten_gib):
    m, _ = ten_gib
    b33 = B + PPB
    assert m.design.online_ranges(m, B, B + PPB) == ([], 1 + PPB)
    # the linear scan stops at the first PageVmemmap pfn, then counts 8192 + 1
    assert m.design.online_ranges(m, b33, b33 + PPB) == ([(b33 + 8192, b33 + PPB)], 1 + 8193)
    s = 40 * PPB
    assert m.design.online_ranges(m, s, s + PPB) == ([(s, s + PPB)], PPB)


def test_kpageflags_of_rfc_vmemmap_pages(ten_gib):
    m, blocks = ten_gib
    online_all(m, blocks)
    kf = kpageflags(m, B, B + 40960 + 1)
    assert set(kf[:40960].tolist()) == {0x100000000}
    assert decode(int(kf[0])) == ["RESERVED"]
    assert int(kf[40960]) == 0x400  # BUDDY: first free page of memory33
    # the marking survives offline; the pages read NOPAGE while offline
    m.offline(111)
    m.offline(96)
    assert m.pages.count(P_VMEMMAP, B + PPB, B + PPB + 8192) == 8192


def test_misaligned_orders_single_block_420_rule():
    m = rfc()
    [b] = m.add(hex(GIB4), "128M")
    zone = m.online(b)
    assert zone.name == "Normal"
    mis = m.groups[0].design_state.misaligned[b]
    # order from the remaining size (32256 pages -> order 10), no alignment check
    assert mis == [(B + 512 + 1024 * k, 10) for k in range(31)]
    assert m.design.misaligned_chunks(m) == {b: mis}
    assert free_blocks(m, B, B + PPB) == mis + [(B + 32256, 9)]
    assert (zone.spanned_pages, zone.present_pages, zone.managed_pages) == (PPB, 32256, 32256)
    nf = m.pages.nr_free[zone.zid].sum(axis=0)
    assert (nf[9], nf[10]) == (1, 31)
    invariants.check(m)


def test_misaligned_orders_with_the_2019_fix():
    m = rfc(rfc_alignment_fix=True)
    [b] = m.add(hex(GIB4), "128M")
    zone = m.online(b)
    assert m.groups[0].design_state.misaligned[b] == []
    assert free_blocks(m, B, B + PPB) == [(B + 512, 9)] + [(B + 1024 * (k + 1), 10)
                                                           for k in range(31)]
    assert (zone.present_pages, zone.managed_pages) == (32256, 32256)


# ---------------------------------------------------------------- offline

def test_offline_is_symmetric_and_keeps_the_marking():
    m = rfc()
    [b] = m.add(hex(GIB4), "128M")
    normal = m.zone_by_name("Normal")
    before = normal.span_state()
    assert m.min_free_kbytes == 45056          # THP: 11 x 512 pages x 2 zones
    m.online(b)
    assert m.min_free_kbytes == 67584          # Normal is populated: 3 zones
    m.alloc(2000, zone="Normal", seed=3)
    m.offline(b)
    # present was 0 (not -512) when offline_pages() recomputed the watermarks
    assert m.min_free_kbytes == 45056
    assert m.blk_state[b] == MEM_OFFLINE and m.blk_zone[b] == -1
    assert (normal.spanned_pages, normal.present_pages, normal.managed_pages) == (0, 0, 0)
    assert normal.span_state()[:5] == before[:5]
    assert m.pages.count(P_VMEMMAP, B, B + PPB) == 512
    assert m.pages.count(P_RESERVED, B, B + PPB) == 512
    assert m.pages.count(2, B, B + PPB) == 0   # no buddy page left
    assert set(kpageflags(m, B, B + PPB).tolist()) == {0x100000}
    # online again: same layout, same misaligned chunks
    m.online(b)
    assert m.groups[0].design_state.misaligned[b] == [(B + 512 + 1024 * k, 10) for k in range(31)]
    assert normal.present_pages == 32256


def test_offline_of_an_all_memmap_block(ten_gib):
    m, blocks = ten_gib
    online_all(m, blocks)
    mov = m.zone_by_name("Movable")
    present, managed = mov.present_pages, mov.managed_pages
    m.offline(32)        # nothing refuses it (rfc_refuse_hazard is off)
    assert (mov.present_pages, mov.managed_pages) == (present, managed)
    assert mov.zone_start_pfn == B + PPB and mov.spanned_pages == 79 * PPB
    [h32, h33] = m.design.hazards(m)
    assert (h32["holder"], h32["holder_state"], h32["risk"]) == (32, "offline", "realized")
    assert h33["risk"] == "offline"


# ---------------------------------------------------------------- hazards

def test_hazard_report(ten_gib):
    m, blocks = ten_gib
    online_all(m, blocks)
    h32, h33 = m.design.hazards(m)
    assert h32 == {"holder": 32, "holder_state": "online", "group": 0,
                   "dependents": list(range(33, 96)), "online_dependents": list(range(33, 96)),
                   "vmemmap_pfns": [(B + 512, B + PPB)],
                   "struct_page_pfns": [(B + PPB, B + 64 * PPB)], "risk": "offline"}
    assert h33 == {"holder": 33, "holder_state": "online", "group": 0,
                   "dependents": list(range(96, 112)), "online_dependents": list(range(96, 112)),
                   "vmemmap_pfns": [(B + PPB, B + PPB + 8192)],
                   "struct_page_pfns": [(B + 64 * PPB, B + 80 * PPB)], "risk": "offline"}
    assert m.design.dependents(m, 40) == []
    m.offline(96)
    assert m.design.hazards(m)[1]["online_dependents"] == list(range(97, 112))
    assert "memory96..memory111 (15 online)" in m.design.format_hazard(m.design.hazards(m)[1])


def test_refuse_offline_leaves_the_machine_unchanged():
    m = rfc(rfc_refuse_hazard=True)
    blocks = m.add(hex(GIB4), "10G")
    online_all(m, blocks)
    snap = m.snapshot()
    with pytest.raises(HotplugError) as ei:
        m.offline(32)
    assert ei.value.errno == "EBUSY"
    assert "memory33..memory95" in ei.value.message
    assert_same(snap, m.snapshot())
    with pytest.raises(HotplugError) as ei:
        m.offline(33)
    assert ei.value.errno == "EBUSY" and "memory96..memory111" in ei.value.message
    assert_same(snap, m.snapshot())
    # once the dependents are offline the holder may go
    for b in range(96, 112):
        m.offline(b)
    m.offline(33)
    assert m.blk_state[33] == MEM_OFFLINE


def test_refuse_per_block_remove_of_a_holder():
    m = rfc(rfc_refuse_hazard=True)
    blocks = m.add(hex(GIB4), "10G")
    snap = m.snapshot()
    with pytest.raises(HotplugError) as ei:
        m.remove(hex(GIB4), "128M")          # per-block remover (DLPAR, virtio-mem)
    assert ei.value.errno == "EBUSY"
    assert "memory33..memory95" in ei.value.message and "stay present" in ei.value.message
    assert_same(snap, m.snapshot())
    # a sub-range whose memmap holders go with it is fine
    m.remove(hex(GIB4 + 64 * (128 << 20)), "2G")    # memory96..memory111
    assert m.groups[0].design_state.head_refcount == 64
    m.remove(hex(GIB4), "8G")
    assert not m.groups and blocks[0] == 32


def test_per_block_remove_of_a_holder_without_refusal(ten_gib):
    m, blocks = ten_gib
    m.remove(hex(GIB4), "128M")
    assert m.groups[0].design_state.teardown == []   # 79 references left: nothing unmapped
    g = m.groups[0]
    assert g.design_state.head_refcount == 79
    assert any("memory33..memory95" in n for n in g.notes)
    h32 = m.design.hazards(m)[0]
    assert (h32["holder"], h32["holder_state"], h32["risk"]) == (32, "removed", "realized")
    assert h32["dependents"] == list(range(33, 96))
    assert m.pages.count(P_VMEMMAP, B, B + PPB) == 0    # that memory is gone


# ---------------------------------------------------------------- remove

def test_teardown_runs_backwards(ten_gib):
    m, blocks = ten_gib
    online_all(m, blocks)
    for b in blocks:
        if b not in (32, 33):
            m.offline(b)
    m.offline(33)
    m.offline(32)
    g = m.groups[0]
    m.remove(hex(GIB4), "10G")
    calls = g.design_state.teardown
    assert calls == [(B + 512 * k, B + 512 * (k + 1)) for k in range(79, -1, -1)]
    assert calls[0] == (B + 40448, B + 40960) and calls[-1] == (B, B + 512)
    assert g.design_state.head_refcount == 0 and g.design_state.altmap.alloc == 0
    assert not m.groups
    assert m.pages.count(P_VMEMMAP, 0, m.nr_pfns) == 0
    assert m.pages.count(P_RESERVED, B, B + 80 * PPB) == 0
    assert not m.blk_state[32:112].any()
    invariants.check(m)


def test_teardown_when_the_holder_goes_last(ten_gib):
    m, _ = ten_gib
    g = m.groups[0]
    m.remove(hex(GIB4 + (128 << 20)), hex(79 * (128 << 20)))
    assert g.design_state.teardown == []
    assert g.design_state.head_refcount == 1
    # the last reference drops on section 0: only its memmap is unmapped, the
    # memmap of the 79 sections removed before is never torn down
    m.remove(hex(GIB4), "128M")
    assert g.design_state.teardown == [(B, B + 512)]
    assert g.design_state.altmap.alloc == 40960 - 512
    assert any("never unmapped" in n for n in g.notes)


# ---------------------------------------------------------------- s390

def test_s390_multiblock_add_falls_back_to_buddy_memmap():
    m = rfc("s390x", max_memory="64G")
    assert m.mode_verdict() == (False, "s390 arch_add_memory clears MHP_MEMMAP_FROM_RANGE")
    dma = m.zone_by_name("DMA")
    free0 = m.zone_free_pages(dma)
    blocks = m.add("0x80000000", "1G")
    assert blocks == [8, 9, 10, 11]
    assert {b: len(v) for b, v in m.memmap_from_buddy.items()} == {8: 1024, 9: 1024,
                                                                     10: 1024, 11: 1024}
    assert all(int(v.max()) < 0x80000 for v in m.memmap_from_buddy.values())
    assert m.zone_free_pages(dma) == free0 - 4096
    assert m.pages.count(P_VMEMMAP, 0, m.nr_pfns) == 0
    assert m.groups[0].design_state is None
    online_all(m, blocks)
    mov = m.zone_by_name("Movable")
    assert (mov.spanned_pages, mov.present_pages, mov.managed_pages) == (4 * 65536,) * 3
    s = 8 * 65536
    assert free_blocks(m, s, s + 65536) == [(s + 1024 * k, 10) for k in range(64)]
    assert m.design.hazards(m) == [] and m.design.vmemmap_pages_by_block(m) == {}
    m.offline(9)
    m.remove("0x90000000", "256M")
    assert 9 not in m.memmap_from_buddy and m.zone_free_pages(dma) == free0 - 3072


# ---------------------------------------------------------------- engines

def _small_run(backend):
    m = CheckedMachine("x86_64", design="rfc2018", boot_memory="256M", max_memory="8G",
                       memmap_on_memory="y", backend=backend)
    snaps = []
    blocks = m.add(None, "512M")
    invariants.check(m)
    snaps.append(m.snapshot())
    online_all(m, blocks)
    [b] = m.add(None, "128M")
    m.online(b, "online_movable")
    invariants.check(m)
    snaps.append(m.snapshot())
    m.alloc(3000, zone="Movable", seed=7)
    m.offline(blocks[1])
    m.offline(b)
    invariants.check(m)
    snaps.append(m.snapshot())
    g = m.group_of_block(b)
    m.remove(hex(b * (128 << 20)), "128M")
    calls = g.design_state.teardown
    invariants.check(m)
    snaps.append(m.snapshot())
    return m, snaps, calls


def test_fast_engine_matches_the_reference():
    fast, fsnaps, fcalls = _small_run("fast")
    ref, rsnaps, rcalls = _small_run("reference")
    assert len(fsnaps) == 4
    for a, b in zip(fsnaps, rsnaps, strict=True):
        assert_same(a, b)
    assert fcalls == rcalls == [(36 * PPB, 36 * PPB + 512)]
    assert fast.groups[0].design_state.misaligned == ref.groups[0].design_state.misaligned
    assert fast.design.hazards(fast) == ref.design.hazards(ref)
    assert fast.design.vmemmap_pages_by_block(fast) == {32: 2048}


# ---------------------------------------------------------------- compare

def test_design_overrides_drop_the_scenario_kernel():
    sc = loads_scenario('[machine]\narch = "x86_64"\nkernel = "6.12"\nboot_memory = "1G"\n')
    over = design_overrides(sc, "rfc2018")
    assert over["design"].name == "rfc2018"
    assert {k: v for k, v in over.items() if k != "design"} == {"memmap_on_memory": "y",
                                                                "kernel": "4.20"}
    m = sc.build_machine(**over)
    assert m.design.name == "rfc2018" and str(m.kernel) == "4.20"


def test_compare_metrics_10g():
    sc = load_scenario(SCEN / "rfc-10g-x86.toml")
    runs = compare(sc, ["rfc2018", "mainline", "none"])
    assert all(r.ok for _, res in runs.values() for r in res)
    rf, ml, no = (metrics(runs[d][0]) for d in ("rfc2018", "mainline", "none"))
    assert rf["vmemmap_pages_by_block"] == {"32": 32768, "33": 8192, "112": 512}
    assert rf["blocks_all_memmap"] == [32] and ml["blocks_all_memmap"] == []
    assert ml["vmemmap_pages_by_block"] == {str(b): 512 for b in range(32, 113)}
    assert no["memmap_pages_in_boot_memory"] == 81 * 512 and rf["memmap_pages_in_boot_memory"] == 0
    assert [d["holder"] for d in rf["cross_block_dependencies"]] == [32, 33]
    assert ml["cross_block_dependencies"] == [] and no["cross_block_dependencies"] == []
    assert rf["misaligned_free_blocks"] == {"112": [(112 * PPB + 512 + 1024 * k, 10)
                                                    for k in range(31)]}
    assert rf["offlinable_holding_foreign_memmap"] == [33]
    assert len(rf["blocks_with_memmap_elsewhere"]) == 79


def test_compare_cli_table_and_json(capsys):
    path = str(SCEN / "rfc-10g-x86.toml")
    assert cli_main(["compare", path, "--designs", "rfc2018,mainline,none"]) == 0
    out = capsys.readouterr().out
    rows = {line[:36].strip(): line[36:].split() for line in out.splitlines()
            if len(line) > 36 and not line.startswith(("[", "===", "rfc2018:"))}
    assert rows["blocks made entirely of memmap"] == ["1", "0", "0"]
    assert rows["cross-block memmap (holder>blocks)"] == ["32>63", "33>16", "none", "none"]
    assert rows["misaligned buddy blocks (online)"] == ["31", "0", "0"]
    assert rows["memmap in boot memory (kB)"] == ["0", "0", str(81 * 512 * 4)]
    assert "rfc2018: memory32 (offline) holds the struct pages of memory33..memory95" in out
    assert cli_main(["compare", path, "--designs", "rfc2018,mainline", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rfc2018"]["metrics"]["self_hosted_vmemmap_pages"] == 40960 + 512
    assert data["rfc2018"]["report"]["machine"]["kernel"] == "4.20"
    assert data["mainline"]["metrics"]["blocks_all_memmap"] == []


def test_compare_s390_multiblock():
    sc = load_scenario(SCEN / "rfc-s390-multiblock.toml")
    runs = compare(sc, ["rfc2018", "mainline", "none"])
    rf, ml, no = (metrics(runs[d][0]) for d in ("rfc2018", "mainline", "none"))
    assert rf["memmap_pages_in_boot_memory"] == no["memmap_pages_in_boot_memory"] == 3 * 1024
    assert rf["self_hosted_vmemmap_pages"] == 0
    assert ml["vmemmap_pages_by_block"] == {"8": 1024, "10": 1024, "11": 1024}
    assert rf["hot_managed_pages"] == 3 * 65536 and ml["hot_managed_pages"] == 3 * (65536 - 1024)


def test_refuse_hazard_scenario_file():
    sc = load_scenario(Path(__file__).parent / "data" / "scenarios" / "rfc-refuse-hazard.toml")
    m, res = run_scenario(sc)
    assert [r.result for r in res] == ["ok", "ok", "EBUSY", "ok", "EBUSY", "ok", "EBUSY", "ok"]
    assert all(r.expected_ok for r in res)
    assert "memory33..memory39, which are online" in res[2].message
    assert "is onlined" in res[4].message
    assert "memory33..memory39, which stay present" in res[6].message
    assert not m.groups and not m.blk_state[32:40].any()
