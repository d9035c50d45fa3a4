"""Real consumers of hotmem's exports: util-linux lsmem, Debian's
prometheus-node-exporter (buddyinfo, zoneinfo, meminfo, meminfo_numa) and
psutil, each on the exports of several machines, checked against hotmem's own
figures.  A missing consumer fails the test (CI installs them: apt-get install
util-linux prometheus-node-exporter; pip install psutil)."""
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from hotmem.constants import MEM_ONLINE
from hotmem.scenario import loads_scenario, run_scenario
from hotmem.views import sysfs
from hotmem.views.export import export
from hotmem.views.meminfo import figures, meminfo_values
from hotmem.views.nodes import node_masks

DATA = Path(__file__).parent / "data" / "scenarios"
SCENARIOS = {
    # two nodes, a DIMM on node 1, two blocks offline again
    "multinode": (DATA / "two-nodes.toml").read_text(),
    # a DIMM half online (kernel zone), half offline, on 6.1
    "partly-offline": """
[machine]
arch = "x86_64"
kernel = "6.1"
boot_memory = "4G"
memmap_on_memory = "y"
[[step]]
op = "add"
size = "1G"
[[step]]
op = "online"
blocks = "40-43"
""",
    "s390x": """
[machine]
arch = "s390x"
kernel = "6.12"
boot_memory = "2G"
memmap_on_memory = "y"
[[step]]
op = "add"
size = "1G"
[[step]]
op = "online"
blocks = "8-9"
type = "online_movable"
""",
    # RAM from 1 GiB: the first memory block is memory2
    "arm64-64k": """
[machine]
arch = "arm64-64k"
kernel = "6.12"
boot_memory = "2G"
memmap_on_memory = "y"
[[step]]
op = "add"
size = "1G"
[[step]]
op = "online"
blocks = "offline"
type = "online_movable"
""",
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def exported(request, tmp_path_factory):
    m, results = run_scenario(loads_scenario(SCENARIOS[request.param], request.param))
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]
    root = tmp_path_factory.mktemp(request.param)
    export(m, root)
    return request.param, m, root


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (apt-get install {package})"
    return path


def test_lsmem_node_and_zones(exported):
    name, m, root = exported
    lsmem = _tool("lsmem", "util-linux")
    out = subprocess.run([lsmem, "--sysroot", str(root), "--all", "--raw", "--noheadings",
                          "-o", "BLOCK,STATE,NODE,ZONES"], check=True, capture_output=True,
                         text=True).stdout
    rows = [line.split(" ") for line in out.splitlines() if line.strip()]
    present = [int(b) for b in m.present_blocks()]
    assert [int(r[0]) for r in rows] == present
    # lsmem (util-linux 2.38 .. 2.41) shows ZONES only when memory0/valid_zones
    # exists; a kernel creates memory blocks for present sections only, so
    # where RAM starts above block 0 (arm64: 1 GiB) there is no memory0 and
    # no ZONES, on a real machine as here
    has_zones = (root / "sys/devices/system/memory/memory0/valid_zones").exists()
    assert has_zones == (name != "arm64-64k")
    for blk, (b, state, node, zones) in zip(present, rows, strict=True):
        assert state == ("online" if m.blk_state[blk] == MEM_ONLINE else "offline")
        assert int(node) == int(m.blk_nid[blk])
        want = "/".join("None" if z == "none" else z
                        for z in sysfs.valid_zones(m, blk).split()) if has_zones else ""
        assert zones == want, (b, zones, want)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(root) -> dict[str, float]:
    exe = _tool("prometheus-node-exporter", "prometheus-node-exporter")
    port = _free_port()
    proc = subprocess.Popen([exe, "--collector.disable-defaults", "--collector.buddyinfo",
                             "--collector.zoneinfo", "--collector.meminfo",
                             "--collector.meminfo_numa", f"--path.procfs={root}/proc",
                             f"--path.sysfs={root}/sys",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        text = None
        for _ in range(50):   # at most 50 requests, 0.1 s apart
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                time.sleep(0.1)
        assert text is not None, "node-exporter did not answer"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    series = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            series[key] = float(value)
    return series


def test_node_exporter(exported):
    name, m, root = exported
    s = _scrape(root)
    for c in ("buddyinfo", "zoneinfo", "meminfo", "meminfo_numa"):
        assert s[f'node_scrape_collector_success{{collector="{c}"}}'] == 1, c
    mi = meminfo_values(m)
    for key in ("MemTotal", "MemFree", "MemAvailable"):
        assert s[f"node_memory_{key}_bytes"] == mi[key] * 1024
    kb = m.arch.page_size >> 10
    for nid in node_masks(m)["online"]:
        f = figures(m, nid)
        assert s[f'node_memory_numa_MemTotal{{node="{nid}"}}'] == f["MemTotal"] * kb * 1024
        assert s[f'node_memory_numa_MemFree{{node="{nid}"}}'] == f["MemFree"] * kb * 1024
        assert s[f'node_memory_numa_MemUsed{{node="{nid}"}}'] == \
            (f["MemTotal"] - f["MemFree"]) * kb * 1024
    buddy = {k: v for k, v in s.items() if k.startswith("node_buddyinfo_blocks")}
    want = {}
    for z in m.zones:
        if z.configured and z.present_pages:
            for order, n in enumerate(m.pages.nr_free[z.zid].sum(axis=0)):
                want[f'node_buddyinfo_blocks{{node="{z.nid}",size="{order}",zone="{z.name}"}}'] \
                    = float(n)
    assert buddy == want
    for z in m.zones:
        if not z.configured or z.nid not in node_masks(m)["online"]:
            continue
        lab = f'{{node="{z.nid}",zone="{z.name}"}}'
        assert s["node_zoneinfo_managed_pages" + lab] == z.managed_pages
        assert s["node_zoneinfo_present_pages" + lab] == z.present_pages
        assert s["node_zoneinfo_spanned_pages" + lab] == z.spanned_pages
        assert s["node_zoneinfo_min_pages" + lab] == z.wmark_min
        assert s["node_zoneinfo_low_pages" + lab] == z.wmark_low
        assert s["node_zoneinfo_high_pages" + lab] == z.wmark_high
        if z.present_pages:
            assert s["node_zoneinfo_nr_free_pages" + lab] == m.zone_free_pages(z)
    # the per-node stats, the zone counters and the NUMA counters of the
    # era's zoneinfo each become a family (issue 12: 25 of them were missing)
    families = {k.split("{")[0] for k in s if k.startswith("node_zoneinfo_")}
    for fam in ("node_zoneinfo_numa_hit_total", "node_zoneinfo_numa_other_total",
                "node_zoneinfo_nr_inactive_anon_pages", "node_zoneinfo_nr_kernel_stacks",
                "node_zoneinfo_nr_written_total", "node_zoneinfo_protection_4"):
        assert fam in families, (fam, sorted(families))
    assert len(families) == 37, sorted(families)   # 12 before the era's key sets


def test_psutil_virtual_memory(exported, monkeypatch):
    import psutil  # a missing psutil is an ImportError: a failure, not a skip
    name, m, root = exported
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(root / "proc"))
    vm = psutil.virtual_memory()
    mi = meminfo_values(m)
    assert (vm.total, vm.available, vm.free) == \
        (mi["MemTotal"] * 1024, mi["MemAvailable"] * 1024, mi["MemFree"] * 1024)
