"""Snapshots: export -> snapshot -> run -> export is identical file for file;
a real kernel's boot capture, onlined, gives that kernel's watermarks and zone
figures; bad files get clear errors; reading never writes under the root and
works without root-only files; this machine's own snapshot runs a what-if."""
import builtins
import json
import os
import re
import tarfile
from pathlib import Path

import pytest

from hotmem.cli import main
from hotmem.errors import ConfigError
from hotmem.scenario import loads_scenario, run_scenario
from hotmem.snapshot import (
    FORMAT,
    VERSION,
    build_machine,
    differences,
    load_snapshot,
    parse_zoneinfo,
    read_snapshot,
)
from hotmem.views import procfs
from hotmem.views.export import export

ORACLE = Path(__file__).parent / "data" / "oracle"
SCENARIOS = [ORACLE / "6.12-mom1-default.toml", ORACLE / "6.1-mom0-qmp.toml",
             Path(__file__).parents[1] / "src/hotmem/scenarios/rfc-10g-x86.toml"]
TWO_NODES = Path(__file__).parent / "data" / "scenarios" / "two-nodes.toml"
ARM64 = """
[machine]
arch = "arm64-64k"
kernel = "6.12"
boot_memory = "2G"
[[step]]
op = "add"
size = "1G"
[[step]]
op = "online"
blocks = "offline"
"""
S390 = """
[machine]
arch = "s390x"
kernel = "6.1"
boot_memory = "2G"
memmap_on_memory = "y"
[[step]]
op = "add"
size = "256M"
[[step]]
op = "add"
size = "256M"
[[step]]
op = "online"
blocks = [8]
type = "online_movable"
[[step]]
op = "alloc"
zone = "Normal"
kind = "unmovable"
pages = 3000
placement = "kernel"
"""


def tree(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every file and symlink under root, with its contents or target."""
    out = {}
    for d, dirs, files in os.walk(root):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
            p = os.path.join(d, name)
            rel = os.path.relpath(p, root)
            out[rel] = ("link", os.readlink(p)) if os.path.islink(p) \
                else ("file", Path(p).read_bytes())
    return out


def _scenario(text_or_path):
    if isinstance(text_or_path, Path):
        return loads_scenario(text_or_path.read_text(), str(text_or_path))
    return loads_scenario(text_or_path)


@pytest.mark.parametrize("source", SCENARIOS + [TWO_NODES, ARM64, S390],
                         ids=[p.stem for p in SCENARIOS] + ["two-nodes", "arm64-64k", "s390x"])
def test_round_trip_is_identical(source, tmp_path, capsys):
    m, _ = run_scenario(_scenario(source))
    export(m, tmp_path / "a")
    assert main(["snapshot", str(tmp_path / "a"), "--out", str(tmp_path / "s.json")]) == 0
    assert "note:" not in capsys.readouterr().out
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert main(["run", str(empty), "--from", str(tmp_path / "s.json"),
                 "--export", str(tmp_path / "b")]) == 0
    a, b = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


def test_scenario_key_and_relative_path(tmp_path):
    m, _ = run_scenario(_scenario(TWO_NODES))
    export(m, tmp_path / "a")
    assert main(["snapshot", str(tmp_path / "a"), "--out", str(tmp_path / "s.json")]) == 0
    sc = tmp_path / "whatif.toml"
    sc.write_text('[machine]\nsnapshot = "s.json"\n[[step]]\nop = "online"\nblocks = "34-35"\n'
                  'type = "online_movable"\n')
    m2, res = run_scenario(_scenario(sc))
    assert [r.ok for r in res] == [True]
    assert m2.blk_state[34] == m2.blk_state[35] == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[machine]\nsnapshot = "s.json"\narch = "s390x"\n')
    with pytest.raises(ConfigError, match="arch: the machine comes from the snapshot"):
        run_scenario(_scenario(bad))


def test_bad_and_foreign_files(tmp_path, capsys):
    cases = {
        "binary.json": (b"\x89PNG\r\n\x1a\n\x00\xff", "not text"),
        "text.json": (b"MemTotal: 1 kB\n", "not JSON"),
        "foreign.json": (b'{"name": "x"}', 'no "format": "hotmem-snapshot"'),
        "future.json": (json.dumps({"format": FORMAT, "version": VERSION + 1}).encode(),
                        f"version {VERSION + 1}; this hotmem reads version {VERSION}"),
        "short.json": (json.dumps({"format": FORMAT, "version": VERSION}).encode(),
                       "lacks 'kernel'"),
    }
    for name, (data, msg) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match=re.escape(msg)):
            load_snapshot(tmp_path / name)
        assert main(["run", "--from", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("hotmem: error: ") and msg in err and "Traceback" not in err
    m, _ = run_scenario(_scenario(TWO_NODES))
    export(m, tmp_path / "a")
    doc = read_snapshot(tmp_path / "a")
    doc["zones"][0]["zone"] = "HighMem"
    with pytest.raises(ConfigError, match="zone HighMem of node 0 is not a zone of x86_64"):
        build_machine(doc)
    doc["zones"][0] = {"zone": "DMA"}
    with pytest.raises(ConfigError, match=r"malformed snapshot \(KeyError: 'node'\)"):
        build_machine(doc, "s.json")
    with pytest.raises(ConfigError, match="no sys/devices/system/memory"):
        read_snapshot(tmp_path)


def test_never_writes_under_root(tmp_path, monkeypatch):
    m, _ = run_scenario(_scenario(TWO_NODES))
    root = tmp_path / "root"
    export(m, root)
    before = tree(root)
    stamps = {p: os.lstat(p).st_mtime_ns for p in root.rglob("*")}
    real_open, real_os_open = builtins.open, os.open

    def guarded_open(file, mode="r", *a, **kw):
        if str(root) in os.path.abspath(str(file)) and set(mode) & set("wax+"):
            raise AssertionError(f"write under the root: {file}")
        return real_open(file, mode, *a, **kw)

    def guarded_os_open(path, flags, *a, **kw):
        if str(root) in os.path.abspath(str(path)) and flags & (os.O_WRONLY | os.O_RDWR):
            raise AssertionError(f"write under the root: {path}")
        return real_os_open(path, flags, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    assert main(["snapshot", str(root), "--out", str(tmp_path / "s.json")]) == 0
    monkeypatch.undo()
    assert tree(root) == before
    assert {p: os.lstat(p).st_mtime_ns for p in root.rglob("*")} == stamps
    # the output may not go into the root's proc or sys
    assert main(["snapshot", str(root), "--out", str(root / "proc" / "s.json")]) == 2
    assert not (root / "proc" / "s.json").exists()


def test_out_never_follows_a_symlink(tmp_path):
    m, _ = run_scenario(_scenario(TWO_NODES))
    export(m, tmp_path / "a")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "s.json").symlink_to(victim)
    # a symlinked --out is refused, its target untouched (hotmem.safeio)
    assert main(["snapshot", str(tmp_path / "a"), "--out", str(tmp_path / "s.json")]) == 2
    assert victim.read_text() == "keep\n"
    assert (tmp_path / "s.json").is_symlink()
    # an existing regular file is replaced whole, through a temporary file
    (tmp_path / "s.json").unlink()
    (tmp_path / "s.json").write_text("old\n")
    assert main(["snapshot", str(tmp_path / "a"), "--out", str(tmp_path / "s.json")]) == 0
    assert load_snapshot(tmp_path / "s.json")["arch"] == "x86_64"


def test_unprivileged_view(tmp_path, capsys):
    """What an unprivileged reader gets: no kpageflags, no pagetypeinfo, iomem
    with its addresses zeroed.  The snapshot says so, and the machine built
    from it has the zones, free blocks per order and blocks the files show."""
    m, _ = run_scenario(_scenario(TWO_NODES))
    root = tmp_path / "a"
    export(m, root)
    (root / "proc" / "kpageflags").unlink()
    (root / "proc" / "pagetypeinfo").unlink()
    iomem = root / "proc" / "iomem"
    iomem.write_text(re.sub(r"[0-9a-f]+-[0-9a-f]+", "00000000-00000000", iomem.read_text()))
    assert main(["snapshot", str(root), "--out", str(tmp_path / "s.json")]) == 0
    out = capsys.readouterr().out
    assert "could not read proc/kpageflags: No such file or directory" in out
    assert "could not read proc/pagetypeinfo" in out
    assert "could not read proc/iomem addresses: hidden (all zero)" in out
    doc = load_snapshot(tmp_path / "s.json")
    assert doc["pages"] is None
    m2 = build_machine(doc)
    assert differences(m2, doc) == []
    assert procfs.buddyinfo(m2) == procfs.buddyinfo(m)
    assert procfs.zoneinfo(m2) == procfs.zoneinfo(m)
    for blk in m.present_blocks():
        assert (m2.blk_state[blk], m2.blk_nid[blk], m2.blk_zone[blk], m2.blk_early[blk]) == \
            (m.blk_state[blk], m.blk_nid[blk], m.blk_zone[blk], m.blk_early[blk])
    # the memmap on memory of the hot-added blocks is known without kpageflags
    assert [m2.nr_vmemmap_pages(int(b)) for b in m.hot_blocks()] == \
        [m.nr_vmemmap_pages(int(b)) for b in m.hot_blocks()]


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    out = tmp_path_factory.mktemp("oracle")
    for name in ("6.1-mom1-movable", "6.12-mom1-movable", "6.12-mom0-movable",
                 "6.1-mom0-default"):
        with tarfile.open(ORACLE / f"{name}.tar.xz") as t:
            t.extractall(out, filter="data")
    return out


@pytest.mark.parametrize("name", ["6.1-mom1-movable", "6.12-mom1-movable",
                                  "6.12-mom0-movable", "6.1-mom0-default"])
def test_boot_capture_gives_the_kernels_watermarks(captures, name):
    """Start from the real kernel's 00-boot files, replay its onlines and
    offlines: every zone's min/low/high(/promo), spanned, present, managed and
    start_pfn equal that kernel's after every step, and the Movable zone's
    free pages too (the default capture: up to the offline its kernel's own
    allocations refuse)."""
    steps = sorted((captures / name / "steps").iterdir())
    doc = read_snapshot(steps[0])
    assert doc["kernel"]["era"] == name.split("-")[0]
    assert len(doc["groups"]) == 8 and not any(doc["blocks"]["hot"][:16])
    m = build_machine(doc)
    assert differences(m, doc) == []
    assert procfs.buddyinfo(m) == (steps[0] / "proc" / "buddyinfo").read_text()
    checked = 0
    for step in steps[1:]:
        op, blk = re.fullmatch(r"\d+-(\w+)-memory(\d+)", step.name).groups()
        if op == "offline" and name.endswith("default"):
            break
        if op == "offline":
            m.offline(int(blk))
        else:
            m.online(int(blk), op)
        real = {(z["node"], z["zone"]): z
                for z in parse_zoneinfo((step / "proc" / "zoneinfo").read_text())}
        mine = {(z["node"], z["zone"]): z for z in parse_zoneinfo(procfs.zoneinfo(m))}
        assert real.keys() == mine.keys()
        for key, z in real.items():
            fields = ["min", "low", "high", "promo", "spanned", "present", "managed",
                      "start_pfn"] + (["free"] if key[1] == "Movable" else [])
            assert {f: mine[key][f] for f in fields} == {f: z[f] for f in fields}, \
                (step.name, key)
        checked += 1
    assert checked == (8 if name.endswith("default") else 16)


def test_this_machine(tmp_path, capsys):
    """hotmem snapshot / of the machine the tests run on: read only, and a
    what-if scenario runs from it."""
    assert main(["snapshot", "/", "--out", str(tmp_path / "host.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("/: kernel ") and f"wrote {tmp_path / 'host.json'}" in out
    assert sorted(os.listdir(tmp_path)) == ["host.json"]
    doc = load_snapshot(tmp_path / "host.json")
    assert doc["kernel"]["release"] == os.uname().release
    m = build_machine(doc)
    assert m.totalram_pages() == sum(z["managed"] for z in doc["zones"])
    whatif = tmp_path / "whatif.toml"
    whatif.write_text('[machine]\nsnapshot = "host.json"\n'
                      '[[step]]\nop = "add"\nsize = "1G"\n'
                      '[[step]]\nop = "online"\nblocks = "offline"\ntype = "online_movable"\n')
    m2, res = run_scenario(_scenario(whatif))
    assert [r.result for r in res] == ["ok", "ok"]
    assert len(res[0].blocks) == (1 << 30) // m2.block_size
    assert all(m2.blk_state[b] == 1 for b in res[0].blocks)
