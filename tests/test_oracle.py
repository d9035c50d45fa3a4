"""hotmem against real kernels: every committed kernel-oracle capture
(tests/data/oracle/*.tar.xz, Debian 6.1, 6.12 and 7.3 under QEMU, made by
tools/kernel-oracle/capture.py) is replayed in hotmem with its .toml scenario
and compared step by step (hotmem.fidelity): the outcome and errno of every
online / offline / hot-add / hot-remove; kpageflags of the hot-added range
value for value; the buddyinfo, zoneinfo (pages free, spanned, present,
managed, start_pfn) and pagetypeinfo rows of Normal and Movable, the zones
that hold only hot-added memory; sysfs ``state`` and ``valid_zones`` of
memory32..39 byte for byte and ``block_size_bytes``.  No QEMU is needed.

What is not compared, and why:

* Boot zones (DMA, DMA32): the guest's firmware and boot allocations are not
  what hotmem simulates; only the list of zones each file shows is compared.
  So are the zoneinfo lines hotmem does not model (watermarks, which depend on
  the boot zones' managed pages; vm statistics; per-cpu pagesets).
* ``default`` captures (memory onlined to Normal): the kernel's own
  allocations (slab, seq_file buffers of the guest's /proc reads, ...) land in
  memory32 at pfns and in numbers that vary from run to run.  The .toml stands
  in for them with one ``alloc`` step (Normal, unmovable, placement "lowest",
  as many pages as the capture's kpageflags show held after the last online),
  which reproduces the EBUSY of the offline of memory32 (compared exactly).
  In these captures the 4 MiB (MAX_ORDER) chunks of the hot-added range that
  hold a kernel allocation in any step of the capture, or a page of hotmem's
  stand-in allocation, are skipped: kpageflags is compared exactly elsewhere;
  for the Normal rows of buddyinfo / pagetypeinfo and zoneinfo ``pages free``,
  the kernel's counts must equal hotmem's free blocks outside the skipped
  chunks plus a remainder that fits in the skipped chunks (non-negative for
  every order and migratetype); pageblock counts outside them must leave
  exactly the skipped pageblocks.  Any step counts, not only the compared
  one, because the guest reads kpageflags before the /proc files and those
  reads allocate.  The rest (sysfs, outcomes, Movable, spanned / present /
  managed / start_pfn) is compared exactly.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import re
import sys
import tarfile
from pathlib import Path

import pytest

from hotmem.fidelity import (
    FILES,
    check_capture,
    check_keys,
    format_matrix,
    pagetypeinfo_columns,
    summarize,
    zoneinfo_keys,
)

ORACLE = Path(__file__).parent / "data" / "oracle"
CAPTURES = sorted(ORACLE.glob("*.tar.xz"))
REPO = Path(__file__).resolve().parents[1]


def _name(p: Path) -> str:
    return p.name.removesuffix(".tar.xz")


VIRTIO_MEM_NORMAL = ["6.1-virtio-mem-online", "6.12-virtio-mem-online",
                     "7.3-virtio-mem-online"]


def test_captures_present():
    assert len(CAPTURES) == 40, [c.name for c in CAPTURES]
    assert {_name(c).split("-")[0] for c in CAPTURES} == {"6.1", "6.12", "7.3", "arm64",
                                                            "ppc64el"}
    for c in CAPTURES:
        assert c.with_name(_name(c) + ".toml").exists(), f"{c.name} has no .toml scenario"


@pytest.mark.parametrize("capture", CAPTURES, ids=_name)
def test_capture_matches_kernel(capture):
    records = check_capture(capture)
    files = {r.file for r in records}
    assert files == set(FILES), f"{_name(capture)}: compared {sorted(files)}"
    bad = [r for r in records if not r.ok]
    if bad:
        summ = summarize(records)
        lines = [f"{_name(capture)}: {len(bad)} comparison(s) differ from the kernel; "
                 "first difference per file:"]
        for f in FILES:
            r = summ.get((_name(capture), f))
            if r is not None:
                n = sum(1 for x in bad if x.file == f)
                lines.append(f"  {f} at step {r.step} ({n} step(s)): {r.detail}")
        lines.append(format_matrix(records))
        pytest.fail("\n".join(lines), pytrace=False)


@pytest.mark.parametrize("name", VIRTIO_MEM_NORMAL)
def test_virtio_mem_short_resize_needs_the_pinned_subblocks(name):
    """virtio-mem onlined to Normal: the kernel's own pages pin two subblocks,
    so the resize to 0 ends "short" with 4 MiB plugged.  The capture's stand-in
    (513 unmovable pages) pins two as well; one page pins one subblock and the
    plugged size differs, and without a stand-in hotmem unplugs everything."""
    capture = ORACLE / f"{name}.tar.xz"
    text = capture.with_name(name + ".toml").read_text()
    assert "pages = 513\n" in text

    def last_step(scenario: str) -> dict[str, str]:
        bad = [r for r in check_capture(capture, scenario) if not r.ok]
        assert {r.step for r in bad} == {"06-resize-0"}
        return {r.file: r.detail for r in bad}

    one = last_step(text.replace("pages = 513\n", "pages = 1\n"))
    assert one["outcome"] == "host: plugged size: kernel 4194304, hotmem 2097152"
    assert one["zoneinfo"] == "Node 0 Normal managed: kernel 1024, hotmem 512"
    start = text.index("\n# The kernel's own pages")
    none = last_step(text[:start] + text[text.index("\n[[step]]  # kernel: short"):])
    assert none["outcome"].startswith("host : kernel short, hotmem ok")
    assert "memory32/state: kernel 'online" in none["state"]


@pytest.mark.parametrize("capture", CAPTURES, ids=_name)
def test_proc_layout_matches_kernel(capture):
    """Every step of every capture: the keys of each /proc/zoneinfo zone
    section (in order) and the /proc/pagetypeinfo columns are the real
    kernel's for that era (6.1, 6.12, 7.3)."""
    records = check_keys(capture)
    assert {r.file for r in records} == {"zoneinfo keys", "pagetypeinfo columns"}
    assert len(records) == 2 * len(json.loads(_manifest(capture))["steps"])
    bad = [r.line() for r in records if not r.ok]
    assert not bad, "\n".join(bad[:5])


def _manifest(capture: Path) -> bytes:
    with tarfile.open(capture) as t:
        return t.extractfile(f"{_name(capture)}/manifest.json").read()


def _step_file(capture: Path, step: str, rel: str) -> str:
    with tarfile.open(capture) as t:
        return t.extractfile(f"{_name(capture)}/steps/{step}/{rel}").read().decode()


def test_proc_layout_differs_between_eras():
    """The layouts compared above are not all the same: 6.12 and 7.3 differ
    exactly by the changes of the eras in between."""
    k612 = zoneinfo_keys(_step_file(ORACLE / "6.12-mom1-qmp.tar.xz",
                                    "02-online_movable-memory32", "proc/zoneinfo"))
    k73 = zoneinfo_keys(_step_file(ORACLE / "7.3-mom1-qmp.tar.xz",
                                   "02-online_movable-memory32", "proc/zoneinfo"))
    mov612, mov73 = k612[(0, "Movable")], k73[(0, "Movable")]
    assert [k for k in mov73 if k not in mov612] == [
        "nr_free_pages_blocks", "high_min:", "high_max:", "reserved_highatomic:",
        "free_highatomic:"]
    assert [k for k in mov612 if k not in mov73] == ["nr_bounce"]
    assert pagetypeinfo_columns(_step_file(ORACLE / "7.3-mom1-qmp.tar.xz",
                                           "02-online_movable-memory32",
                                           "proc/pagetypeinfo"))[1] == [
        "Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"]


# ---------------------------------------------------------------- the comparison itself


def _default_capture(mom: int = 1) -> Path:
    return ORACLE / f"6.1-mom{mom}-default.tar.xz"


def test_default_stand_in_is_what_makes_the_offline_fail():
    """Without the stand-in for the kernel's allocations, hotmem offlines
    memory32 and the comparison must say so (kernel EBUSY, hotmem ok)."""
    cap = _default_capture()
    text = cap.with_name(_name(cap) + ".toml").read_text()
    no_alloc = re.sub(r"\[\[step\]\]\nop = \"alloc\"\n(?:[a-z_]+ = .*\n)+", "", text)
    assert no_alloc != text
    records = check_capture(cap, scenario_text=no_alloc)
    out = [r for r in records if r.file == "outcome" and not r.ok]
    assert out and out[0].step == "09-offline-memory32"
    assert "kernel EBUSY, hotmem ok" in out[0].detail
    # and the block then stays online in the kernel only
    assert any(r.file == "state" and not r.ok and "memory32/state" in r.detail for r in records)


def test_comparison_sees_a_wrong_era_and_mode():
    """The comparator must not pass everything: replaying a memmap_on_memory=1
    capture without memmap on memory changes kpageflags and zone counters."""
    cap = ORACLE / "6.12-mom1-movable.tar.xz"
    text = cap.with_name(_name(cap) + ".toml").read_text()
    records = check_capture(cap, scenario_text=text.replace('memmap_on_memory = "y"',
                                                            'memmap_on_memory = "n"'))
    failed = {r.file for r in records if not r.ok}
    assert {"kpageflags", "zoneinfo", "buddyinfo", "pagetypeinfo"} <= failed
    assert {"state", "valid_zones", "outcome"}.isdisjoint(failed)
    first = next(r for r in records if r.file == "kpageflags" and not r.ok)
    assert first.step == "01-online_movable-memory32" and "pfn 0x100000" in first.detail


def test_default_skip_covers_only_memory32_chunks():
    """The skipped chunks of the default captures stay inside memory32, so
    memory33..39 are compared pfn for pfn."""
    for cap in sorted(ORACLE.glob("*-default.tar.xz")):
        records = check_capture(cap)
        for r in records:
            if r.file == "kpageflags" and r.skipped:
                for lo in re.findall(r"pfns? (0x[0-9a-f]+)-", r.skipped):
                    assert 0x100000 <= int(lo, 16) < 0x108000, (cap.name, r.step, r.skipped)


# ---------------------------------------------------------------- the .toml generator


def _capture_module():
    # the driver modules (virtio_mem.py, dax_kmem.py) import capture.py by name
    sys.path.insert(0, str(REPO / "tools" / "kernel-oracle"))
    spec = importlib.util.spec_from_file_location(
        "oracle_capture", REPO / "tools" / "kernel-oracle" / "capture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("capture", CAPTURES, ids=_name)
def test_toml_is_what_the_generator_writes(capture):
    """A re-capture reproduces the committed .toml (tools/kernel-oracle/capture.py)."""
    cap = _capture_module()
    name = _name(capture)
    foreign = cap.foreign_captures().get(name)
    if foreign is not None:
        with tarfile.open(capture) as t:
            files = {mb.name.split("/", 1)[1]: t.extractfile(mb).read() for mb in t if mb.isfile()}
        manifest = json.loads(files["manifest.json"])
        steps = {p[len("steps/"):]: d for p, d in files.items() if p.startswith("steps/")}
        assert capture.with_name(name + ".toml").read_text() == foreign.toml(manifest, steps)
        return
    driver = cap.driver_of(name)
    if driver is not None:
        with tarfile.open(capture) as t:
            files = {mb.name.split("/", 1)[1]: t.extractfile(mb).read() for mb in t if mb.isfile()}
        manifest = json.loads(files["manifest.json"])
        takes_files = len(inspect.signature(driver.scenario_toml).parameters) == 2
        args = (manifest, files) if takes_files else (manifest,)
        assert capture.with_name(name + ".toml").read_text() == driver.scenario_toml(*args)
        return
    era, mom, scen = cap.parse_name(name)
    with tarfile.open(capture) as t:
        files = {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t if m.isfile()}
    manifest = json.loads(files["manifest.json"])
    steps = {p[len("steps/"):]: d for p, d in files.items() if p.startswith("steps/")}
    want = cap.scenario_toml(name, era, mom, scen,
                             {r["dir"]: r["result"] for r in manifest["steps"]},
                             cap.stand_in_allocation(scen, steps))
    assert capture.with_name(name + ".toml").read_text() == want


def _zone_wmarks(text: str, zone: str) -> tuple[int, int, int]:
    sec = text.split(f"zone {zone:>8}")[1].split("\nNode")[0]
    return tuple(int(re.search(rf"\n\s+{k}\s+(\d+)", sec).group(1))
                 for k in ("min", "low", "high"))


@pytest.mark.parametrize("name", [f"{era}-virtio-mem-{kind}" for era in ("6.1", "6.12", "7.3")
                                  for kind in ("movable", "online")])
def test_virtio_mem_fake_offline_leaves_the_watermarks(name):
    """virtio_mem_fake_offline() / fake_online() change managed pages through
    adjust_managed_page_count(), which does not recompute the watermarks: the
    kernel's min/low/high are the same at 506M and 512M (3 subblocks of
    memory35 fake-onlined), and so are hotmem's.  From 6.12 ZONE_MOVABLE's min
    is clamp(managed / 1024, 32, 128), free of the boot zones: equal to the
    kernel's at every step.  DMA32's lowmem_reserve ("protection:") counts
    only hot-added zones here: equal at every step, stale after a fake offline
    before 6.14 (506M: 512; 0: 128) and following it from then (506, 4)."""
    from hotmem.scenario import load_scenario, run_scenario
    from hotmem.views.procfs import zoneinfo
    capture = ORACLE / f"{name}.tar.xz"
    zone = "Movable" if name.endswith("movable") else "Normal"
    kern, hot = {}, {}

    kprot, hprot = {}, {}

    def on_step(m, res):
        if res.step.capture:
            ktext = _step_file(capture, res.step.capture, "proc/zoneinfo")
            htext = zoneinfo(m)
            kern[res.step.capture] = _zone_wmarks(ktext, zone)
            hot[res.step.capture] = _zone_wmarks(htext, zone)
            kprot[res.step.capture] = _protection(ktext, "DMA32")
            hprot[res.step.capture] = _protection(htext, "DMA32")

    run_scenario(load_scenario(capture.with_name(name + ".toml")), on_step=on_step)
    assert kern["04-resize-506M"] == kern["05-resize-512M"]
    assert hot["04-resize-506M"] == hot["05-resize-512M"]
    if zone == "Movable" and not name.startswith("6.1-"):
        assert {k: v[0] for k, v in hot.items()} == {k: v[0] for k, v in kern.items()}
    assert hprot == kprot
    top = 2 if zone == "Normal" else 3    # the ZONE_NORMAL / ZONE_MOVABLE column
    stale = not name.startswith("7.3-")
    assert hprot["04-resize-506M"][top] == (512 if stale else 506)
    if zone == "Normal":
        assert hprot["06-resize-0"][top] == (128 if stale else 4)


def _protection(text: str, zone: str) -> list[int]:
    sec = text.split(f"zone {zone:>8}")[1]
    return [int(x) for x in re.search(r"protection: \(([^)]*)\)", sec).group(1).split(",")]


@pytest.mark.parametrize("capture", CAPTURES, ids=_name)
def test_meminfo_keys_match_kernel(capture):
    """/proc/meminfo lists the keys of the kernel's, in order, on every arch
    and era: CmaTotal/CmaFree where the Debian config has CMA, Unaccepted on
    x86 only (CONFIG_UNACCEPTED_MEMORY), GPUActive/GPUReclaim from 7.0,
    powerpc's DirectMap lines with the radix MMU."""
    from hotmem.scenario import load_scenario
    from hotmem.views.meminfo import meminfo
    name = _name(capture)
    m = load_scenario(capture.with_name(name + ".toml")).build_machine()
    kern = [ln.split(":")[0] for ln in _step_file(capture, "00-boot", "proc/meminfo").splitlines()]
    assert [ln.split(":")[0] for ln in meminfo(m).splitlines()] == kern
