"""Scenario files and the command line."""
import json
import subprocess
import sys

import pytest

from hotmem.cli import main
from hotmem.errors import ConfigError
from hotmem.scenario import loads_scenario, run_scenario

SCENARIO = """
[machine]
arch = "x86_64"
kernel = "6.12"
boot_memory = "2G"
memmap_on_memory = "y"
on_error = "continue"

[[step]]
op = "add"
size = "512M"
start = "0x100000000"
[[step]]
op = "online"
blocks = "offline"
type = "online_movable"
[[step]]
op = "alloc"
zone = "Movable"
pages = 1000
seed = 1
[[step]]
op = "offline"
blocks = [33]
[[step]]
op = "remove"
start = "0x100000000"
size = "512M"
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_run_scenario_results():
    sc = loads_scenario(SCENARIO)
    m, res = run_scenario(sc)
    assert [r.result for r in res] == ["ok", "ok", "ok", "ok", "EBUSY"]
    assert res[1].blocks == [32, 33, 34, 35]
    assert "memory32" in res[4].message


def test_cli_json_and_exit_status(tmp_path, capsys):
    p = write(tmp_path, SCENARIO)
    assert main(["run", str(p), "--json"]) == 1      # the remove failed
    rep = json.loads(capsys.readouterr().out)
    assert rep["steps"][4]["result"] == "EBUSY"
    mov = [z for z in rep["zones"] if z["zone"] == "Movable"][0]
    assert mov["present_pages"] == 3 * 32768 and mov["managed_pages"] == 3 * 32256
    blk = [b for b in rep["memory_blocks"] if b["id"] == 32][0]
    assert blk["altmap"] == {"base_pfn": 0x100000, "end_pfn": 0x107FFF, "reserve": 0,
                             "free": 512, "align": 0, "alloc": 512}


def test_cli_export_each(tmp_path, capsys):
    p = write(tmp_path, SCENARIO.replace('on_error = "continue"', 'on_error = "stop"'))
    out = tmp_path / "out"
    assert main(["run", str(p), "--export", str(out), "--export-each"]) == 1
    dirs = sorted(d.name for d in out.iterdir())
    assert dirs == [".hotmem-export", "00-add", "01-online", "02-alloc", "03-offline",
                    "04-remove"]
    manifest = (out / ".hotmem-export").read_text().splitlines()
    assert "03-offline/sys/devices/system/memory/memory33/state" in manifest
    kpf = (out / "01-online" / "proc" / "kpageflags").read_bytes()
    assert len(kpf) == (0x100000 + 4 * 32768) * 8
    assert (out / "03-offline/sys/devices/system/memory/memory33/state").read_text() == "offline\n"
    assert (out / "00-add/sys/devices/system/memory/block_size_bytes").read_text() == "8000000\n"
    assert "zone  Movable" in (out / "01-online/proc/buddyinfo").read_text()


@pytest.mark.parametrize("text,msg", [
    ('[machine]\narch = "vax"\n', "unknown arch 'vax'"),
    ('[machine]\nboot_memory = "lots"\n', "not a size"),
    ('[machine]\ncolour = "red"\n', "unknown key 'colour'"),
    ('[[step]]\nop = "add"\n', "add needs a size"),
    ('[[step]]\nop = "teleport"\n', "step 0 op: 'teleport'"),
    ('[[step]]\nop = "online"\nblocks = "some"\n', "blocks: 'some'"),
    ('[[step]]\nop = "add"\nsize = "1G"\nstrat = "0x0"\n', "unknown key(s) ['strat']"),
    ('[machine\n', "not valid TOML"),
])
def test_bad_scenarios_clear_messages(tmp_path, capsys, text, msg):
    p = write(tmp_path, text)
    assert main(["run", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hotmem: error: ") and msg in err and "Traceback" not in err


def test_unaligned_add_is_a_step_failure(tmp_path, capsys):
    p = write(tmp_path, '[machine]\nboot_memory = "2G"\n[[step]]\nop = "add"\nsize = "100M"\n')
    assert main(["run", str(p)]) == 1
    assert "EINVAL: Block size [0x8000000] unaligned hotplug range" in capsys.readouterr().out


def test_default_job_console_script():
    out = subprocess.run([sys.executable, "-m", "hotmem.cli", "run"], capture_output=True,
                         text=True, check=True).stdout
    assert "=== none: memmap_on_memory=n" in out and "=== mainline: memmap_on_memory=y" in out
    # the 64 GiB DIMM needs 1 GiB of memmap from a 1 GiB VM: ENOMEM without memmap on memory
    row = [line for line in out.splitlines() if line.startswith("step 04 add")][0]
    assert row.split()[-2:] == ["ENOMEM", "ok"]


def test_arches_table(capsys):
    assert main(["arches", "--json"]) == 0
    rows = {r["arch"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["ppc64-radix-64k"]["force_waste_pages_per_block"] == 28
    assert rows["arm64-64k"]["memmap_on_memory_y"] is False
    assert rows["x86_64"]["memmap_pages_per_block"] == 512


def test_scenario_expect(tmp_path):
    sc = loads_scenario('[machine]\nboot_memory = "2G"\n[[step]]\nop = "add"\nsize = "100M"\n'
                        'expect = "EINVAL"\n')
    _, res = run_scenario(sc)
    assert res[0].expected_ok and not res[0].ok


def test_config_error_type():
    with pytest.raises(ConfigError):
        loads_scenario('[machine]\nnodes = "two"\n')


def test_compare_exit_status(tmp_path, capsys):
    """compare: 1 when a step failed under any design (as run), 2 on bad input."""
    p = write(tmp_path, SCENARIO)                       # the remove fails with EBUSY
    assert main(["compare", str(p)]) == 1
    ok = write(tmp_path, SCENARIO.split("[[step]]\nop = \"offline\"")[0], "ok.toml")
    assert main(["compare", str(ok), "--json"]) == 0
    capsys.readouterr()
    assert main(["compare", str(p), "--designs", "none,bogus"]) == 2
    assert capsys.readouterr().err == ("hotmem: error: --designs: design: 'bogus' is not one "
                                       "of none, mainline, rfc2018 (or module:attribute)\n")
    assert main(["compare", str(tmp_path / "missing.toml")]) == 2


def test_export_flags_need_a_scenario_and_export(tmp_path, capsys):
    assert main(["run", "--export", str(tmp_path / "out")]) == 2
    assert "--export needs a SCENARIO" in capsys.readouterr().err
    p = write(tmp_path, SCENARIO)
    assert main(["run", str(p), "--force"]) == 2
    assert capsys.readouterr().err == "hotmem: error: --export-each and --force need --export DIR\n"
    assert not (tmp_path / "out").exists()
