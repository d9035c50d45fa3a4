"""/proc/vmstat (views/vmstat.py): the key set and order of each era, arch and
config, checked against every kernel-oracle capture after every step, and the
counters hotmem models (docs/kernel-notes.md §11.5)."""
import json
import tarfile
from pathlib import Path

import pytest

from hotmem.fidelity import Capture, Record, check_capture
from hotmem.kernel import Kernel
from hotmem.machine import Machine
from hotmem.scenario import loads_scenario
from hotmem.views import procfs
from hotmem.views.vmstat import vm_event_names, vmstat, vmstat_keys, vmstat_values

ORACLE = Path(__file__).parent / "data" / "oracle"
CAPTURES = sorted(ORACLE.glob("*.tar.xz"))
# the x86_64 captures (Debian amd64 6.1.192, 6.12.117, 7.3.4): names start with the era
X86_CAPTURES = [p for p in CAPTURES if p.name[0].isdigit()]
# the counters whose values hotmem models exactly on the x86_64 guests (the
# boot zones, hence nr_free_pages, come from a firmware hotmem does not replay)
EXACT = ("nr_free_cma", "nr_memmap_pages", "nr_memmap_boot_pages", "nr_balloon_pages")
MOVED = ("pgdemote_kswapd", "pgdemote_direct", "pgdemote_khugepaged", "pgsteal_kswapd",
         "pgsteal_direct", "pgsteal_khugepaged", "pgsteal_anon", "pgsteal_file",
         "pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged", "pgscan_anon", "pgscan_file",
         "pgrefill")
HV = {"name": "hv", "driver": "hv-balloon", "start": "0x140000000", "size": "256M",
      "backed": "256M"}


def _name(p: Path) -> str:
    return p.name.removesuffix(".tar.xz")


def parse_vmstat(text: str) -> list[tuple[str, int]]:
    out = []
    for line in text.splitlines():
        key, value = line.split(" ")
        out.append((key, int(value)))
    return out


def _keys_step(cap: Capture, kstep, m, results, chunks) -> list[Record]:
    step = kstep["dir"]
    kern = [k for k, _ in parse_vmstat(cap.text(step, "proc/vmstat"))]
    ours = [k for k, _ in parse_vmstat(vmstat(m))]
    ok = kern == ours
    detail = "" if ok else (f"kernel only {[k for k in kern if k not in ours]}, hotmem only "
                            f"{[k for k in ours if k not in kern]}, "
                            f"{len(kern)} vs {len(ours)} keys")
    return [Record(cap.name, step, "vmstat keys", ok, detail)]


@pytest.mark.parametrize("capture", CAPTURES, ids=_name)
def test_vmstat_keys_match_kernel(capture):
    """Every step of every capture (x86_64 6.1 / 6.12 / 7.3, arm64 6.12 / 7.3,
    ppc64el 6.12 / 7.2): hotmem's /proc/vmstat has exactly the kernel's keys,
    in the kernel's order."""
    records = check_capture(capture, step_fn=_keys_step)
    with tarfile.open(capture) as t:
        manifest = t.extractfile(f"{_name(capture)}/manifest.json")
        assert manifest is not None
        steps = json.load(manifest)["steps"]
    assert len(records) == len(steps)
    bad = [r.line() for r in records if not r.ok]
    assert not bad, "\n".join(bad[:5])


def _values_step(cap: Capture, kstep, m, results, chunks) -> list[Record]:
    step = kstep["dir"]
    named = {st.capture for st in loads_scenario(cap.toml, cap.source).steps}
    if step not in named:
        # a setup write the scenario has no op for (the dax captures' namespace
        # and dax_pmem binds before the kmem attach): not a state hotmem models
        return []
    kern = dict(parse_vmstat(cap.text(step, "proc/vmstat")))
    ours = vmstat_values(m)
    diff = {k: (kern[k], ours[k]) for k in EXACT if k in kern and kern[k] != ours[k]}
    return [Record(cap.name, step, "vmstat values", not diff, repr(diff))]


@pytest.mark.parametrize("capture", X86_CAPTURES, ids=_name)
def test_vmstat_modelled_counters_match_kernel(capture):
    """nr_free_cma (0), nr_memmap_pages / nr_memmap_boot_pages (6.12, 7.3: the
    memmap of the boot and hot-added sections, with or without an altmap)
    and nr_balloon_pages (7.3: no balloon, 0) equal the kernel's after every
    step the scenario replays."""
    records = check_capture(capture, step_fn=_values_step)
    assert records
    bad = [r.line() for r in records if not r.ok]
    assert not bad, "\n".join(bad[:5])


def test_vmstat_memmap_counters_seen_in_the_captures():
    """The values compared above are not all 0: 7.3-mom1-movable, after onlining
    memory32 with its memmap on memory, and 6.1 has no such keys."""
    cap = Capture.load(ORACLE / "7.3-mom1-movable.tar.xz")
    kern = dict(parse_vmstat(cap.text("01-online_movable-memory32", "proc/vmstat")))
    assert (kern["nr_memmap_pages"], kern["nr_memmap_boot_pages"]) == (4096, 8192)
    m = Machine("x86_64", kernel="6.1", boot_memory="2G")
    assert "nr_memmap_pages" not in vmstat_values(m)


def machine(kernel, arch="x86_64"):
    return Machine(arch, kernel=kernel, boot_memory="2G")


def test_vmstat_line_counts_per_era():
    """Debian amd64: 173 keys in 6.1, 185 in 6.12, 202 in 7.3 (the captures)."""
    assert [len(vmstat_keys(machine(k))) for k in ("6.1", "6.12", "7.3")] == [173, 185, 202]
    assert vmstat(machine("7.3")).endswith("nrswpin 0\nnrswpout 0\nnr_unstable 0\n")


def events(k, arch="x86_64"):
    return vm_event_names(machine(k, arch))


@pytest.mark.parametrize("release, added, removed", [
    ("6.2", ["pgsteal_khugepaged", "pgdemote_khugepaged", "pgscan_khugepaged"], []),
    ("6.8", ["zswpwb"], ["pgdemote_kswapd", "pgdemote_direct", "pgdemote_khugepaged"]),
    ("6.12", ["zone_reclaim_success", "thp_underused_split_page", "swpin_zero",
              "swpout_zero"], []),
    ("6.15", ["pgsteal_proactive", "pgscan_proactive", "direct_map_level2_collapses",
              "direct_map_level3_collapses"], []),
    ("7.1", [], ["pgrefill", "pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged",
                 "pgsteal_proactive", "pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged",
                 "pgscan_proactive", "pgscan_anon", "pgscan_file", "pgsteal_anon",
                 "pgsteal_file"]),
    ("7.2", ["cma_alloc_success", "cma_alloc_fail"], []),     # Debian: CONFIG_CMA
    ("7.3", ["nrswpin", "nrswpout"], []),
])
def test_vm_events_by_release(release, added, removed):
    """Each release adds and removes exactly these vm events (x86_64)."""
    k = Kernel.parse(release)
    before = events("6.19" if (k.major, k.minor) == (7, 0) else f"{k.major}.{k.minor - 1}")
    now = events(release)
    assert [x for x in now if x not in before] == added
    assert [x for x in before if x not in now] == removed


def test_vm_events_change_only_in_the_releases_above():
    changes = {"6.2", "6.8", "6.12", "6.15", "7.1", "7.2", "7.3"}
    prev = events("6.1")
    for major, last in ((6, 19), (7, 3)):
        for minor in range(2 if major == 6 else 0, last + 1):
            now = events(f"{major}.{minor}")
            assert (now != prev) == (f"{major}.{minor}" in changes), f"{major}.{minor}"
            prev = now


# every key /proc/vmstat gains or loses from the previous release (x86_64):
# 6.1 -> 6.12 and 6.12 -> 7.3 are exactly the differences of the captures
FILE_CHANGES = {
    "6.2": (["pgsteal_khugepaged", "pgdemote_khugepaged", "pgscan_khugepaged"], []),
    "6.5": (["nr_unaccepted"], []),
    "6.8": (["zswpwb"], []),        # pgdemote_* only move
    "6.10": (["nr_iommu_pages"], []),
    "6.11": (["nr_memmap_pages", "nr_memmap_boot_pages"], []),
    "6.12": (["zone_reclaim_success", "thp_underused_split_page", "swpin_zero",
              "swpout_zero"], []),
    "6.13": (["nr_hugetlb"], []),
    "6.15": (["nr_free_pages_blocks", "pgdemote_proactive", "nr_balloon_pages",
              "pgsteal_proactive", "pgscan_proactive", "direct_map_level2_collapses",
              "direct_map_level3_collapses"], []),
    "6.16": ([], ["nr_bounce"]),
    "6.17": ([], ["nr_writeback_temp"]),
    "6.18": (["pgpromote_candidate_nrl", "nr_kernel_file_pages"], []),
    "7.0": (["nr_gpu_active", "nr_gpu_reclaim"], []),
    "7.1": (["nr_vmalloc"], []),    # pgsteal_* / pgscan_* / pgrefill only move
    "7.2": (["cma_alloc_success", "cma_alloc_fail"], []),
    "7.3": (["pgrotate_anon", "pgrotate_file", "nrswpin", "nrswpout"], []),
}


def test_vmstat_keys_by_release():
    """From 6.1 to 7.3, release by release, the keys added and removed are
    exactly FILE_CHANGES; the releases without a row print the previous
    release's keys, in the same order."""
    prev = vmstat_keys(machine("6.1"))
    for major, last in ((6, 19), (7, 3)):
        for minor in range(2 if major == 6 else 0, last + 1):
            release = f"{major}.{minor}"
            now = vmstat_keys(machine(release))
            added = [x for x in now if x not in prev]
            removed = [x for x in prev if x not in now]
            assert (added, removed) == FILE_CHANGES.get(release, ([], [])), release
            if release not in FILE_CHANGES:
                assert now == prev, release
            prev = now


@pytest.mark.parametrize("release", ["6.1", "6.7", "6.8", "6.15", "7.0", "7.1", "7.3"])
def test_moved_counters_printed_once(release):
    """pgdemote_* (6.8) and pgsteal_* / pgscan_* / pgrefill (7.1) move from the
    vm events to the per-node stats: each is printed exactly once, in the
    per-node block from its move on (as in /proc/zoneinfo's per-node stats)."""
    m = machine(release)
    keys = vmstat_keys(m)
    assert len(set(keys)) == len(keys)
    k = (m.kernel.major, m.kernel.minor)
    node = set(procfs.node_stat_names(m))
    for name in MOVED:
        if name.endswith("khugepaged") and k < (6, 2):
            assert name not in keys
            continue
        assert keys.count(name) == 1
        moved = k >= (6, 8) if name.startswith("pgdemote") else k >= (7, 1)
        assert (name in node) == moved, name
    i = keys.index
    assert i("nr_dirty_threshold") < i("pgpgin")
    if k >= (7, 1):
        assert i("pgdemote_kswapd") < i("pgsteal_kswapd") < i("nr_dirty_threshold")
    elif k >= (6, 8):
        assert i("pgdemote_kswapd") < i("nr_dirty_threshold") < i("pgsteal_kswapd")
    else:
        assert i("pgsteal_direct") < i("pgdemote_kswapd") < i("pgscan_kswapd")


@pytest.mark.parametrize("arch, zones, present, absent", [
    ("x86_64", ["dma", "dma32", "normal", "movable", "device"],
     ["thp_split_pud", "direct_map_level2_splits"], ["cma_alloc_success"]),
    ("arm64-4k", ["dma", "dma32", "normal", "movable", "device"], ["cma_alloc_success"],
     ["thp_split_pud", "direct_map_level2_splits"]),
    ("ppc64-radix-64k", ["normal", "movable", "device"],
     ["thp_split_pud", "cma_alloc_success"], ["direct_map_level2_splits"]),
    ("s390x", ["dma", "normal", "movable", "device"], [],
     ["thp_split_pud", "direct_map_level2_splits", "cma_alloc_success"]),
    ("riscv64", ["dma32", "normal", "movable", "device"], [],
     ["thp_split_pud", "direct_map_level2_splits", "cma_alloc_success"]),
])
def test_vm_events_follow_the_arch_config(arch, zones, present, absent):
    """FOR_ALL_ZONES (CONFIG_ZONE_DMA / ZONE_DMA32), CONFIG_X86,
    CONFIG_HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD and CONFIG_CMA of 6.12."""
    names = events("6.12", arch)
    assert [n.removeprefix("pgalloc_") for n in names if n.startswith("pgalloc_")] == zones
    assert [n for n in names if n.startswith("allocstall_")] == [f"allocstall_{z}" for z in zones]
    assert all(n in names for n in present) and not any(n in names for n in absent)


def test_riscv64_pud_thp_from_6_16():
    assert "thp_split_pud" not in events("6.15", "riscv64")
    assert "thp_split_pud" in events("6.16", "riscv64")


def test_nr_balloon_pages_from_6_15():
    """NR_BALLOON_PAGES: a Hyper-V balloon of 128 MiB holds 32768 pages, shown
    from 6.15 on (after nr_hugetlb), absent before."""
    for kernel, shown in (("6.14", False), ("6.15", True), ("7.3", True)):
        m = Machine("x86_64", kernel=kernel, boot_memory="4G", auto_online_blocks="online")
        m.attach(dict(HV))
        assert m.resize("hv", "128M") == []
        values = vmstat_values(m)
        assert ("nr_balloon_pages" in values) == shown
        if shown:
            assert values["nr_balloon_pages"] == 32768
            keys = list(values)
            assert keys.index("nr_balloon_pages") == keys.index("nr_hugetlb") + 1
        assert m.resize("hv", "256M") == []
        assert vmstat_values(m).get("nr_balloon_pages", 0) == 0


def test_nr_free_pages_and_blocks_sum_the_zones():
    """nr_free_pages and (6.15) nr_free_pages_blocks are the sums of the zone
    counters /proc/zoneinfo prints."""
    m = machine("7.3")
    m.add(0x100000000, 128 << 20)
    m.online(32, "online_movable")
    zi = procfs.zoneinfo(m).splitlines()
    sums = {key: sum(int(ln.split()[1]) for ln in zi if ln.split()[:1] == [key])
            for key in ("nr_free_pages", "nr_free_pages_blocks")}
    values = vmstat_values(m)
    assert {key: values[key] for key in sums} == sums
    assert sums["nr_free_pages_blocks"] > 32768 - 512
    assert "nr_free_pages_blocks" not in vmstat_values(machine("6.14"))
