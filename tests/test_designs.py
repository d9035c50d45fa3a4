"""Designs as plug-ins: built-ins by name, outside designs by module:attribute
or file.py:attribute, in the API, in scenarios and in ``hotmem compare``."""
import json
from pathlib import Path

import pytest

from hotmem import designs
from hotmem.cli import main
from hotmem.designs.base import Design
from hotmem.errors import ConfigError
from hotmem.machine import Machine

HERE = Path(__file__).parent
PLUGIN = HERE / "design_plugin.py"
SCENARIO = Path(designs.__file__).parents[1] / "scenarios" / "default.toml"


def test_builtin_designs_by_name():
    assert designs.NAMES == ("none", "mainline", "rfc2018")
    for name in designs.NAMES:
        d = designs.get(name)
        assert isinstance(d, Design) and d.name == name


def test_unknown_design_is_a_clear_error():
    with pytest.raises(ConfigError, match="not one of none, mainline, rfc2018"):
        designs.get("mainlne")
    with pytest.raises(ConfigError, match="cannot import"):
        designs.get("no_such_module_xyz:Design")
    with pytest.raises(ConfigError, match="not a hotmem.designs.base.Design"):
        designs.get("json:dumps")


def test_options_belong_to_their_design():
    assert designs.get("rfc2018", rfc_refuse_hazard=True).refuse_hazard
    with pytest.raises(ConfigError, match="option of another design"):
        designs.get("mainline", rfc_refuse_hazard=True)
    designs.get("mainline", rfc_refuse_hazard=False)   # false is no request


def _compare_json(capsys, spec):
    rc = main(["compare", str(SCENARIO), "--designs", f"mainline,{spec}", "--json"])
    out = json.loads(capsys.readouterr().out)
    return rc, out


@pytest.mark.parametrize("how", ["file", "module"])
def test_subclass_without_changes_matches_mainline(capsys, monkeypatch, how):
    if how == "file":
        spec = f"{PLUGIN}:PatchedMainline"
    else:
        monkeypatch.syspath_prepend(str(HERE))
        spec = "design_plugin:PatchedMainline"
    rc, out = _compare_json(capsys, spec)
    assert rc == 1          # the default job has steps that fail (ENOMEM, EBUSY)
    assert list(out) == ["mainline", spec]
    assert out[spec]["metrics"] == out["mainline"]["metrics"]
    assert out[spec]["report"] == out["mainline"]["report"]
    # after the last step only the 64 GiB DIMM is present: 512 blocks x 512 pages
    assert out["mainline"]["metrics"]["self_hosted_vmemmap_pages"] == 512 * 512


def test_a_plugin_that_changes_something_shows_it(capsys):
    spec = f"{PLUGIN}:RefusesEverything"
    _, out = _compare_json(capsys, spec)
    mine = out[spec]["metrics"]
    assert mine["design"] == "refuses-everything"
    assert mine["self_hosted_vmemmap_pages"] == 0
    # the 64 GiB DIMM now needs its memmap from the 1 GiB VM: ENOMEM, as in `none`
    steps = {s["index"]: s["result"] for s in out[spec]["report"]["steps"]}
    assert steps[4] == "ENOMEM"


def test_design_key_of_a_scenario_takes_a_plugin(tmp_path):
    sc = tmp_path / "s.toml"
    sc.write_text(f'[machine]\narch = "x86_64"\nkernel = "6.12"\nboot_memory = "2G"\n'
                  f'memmap_on_memory = "y"\ndesign = "{PLUGIN}:RefusesEverything"\n'
                  '[[step]]\nop = "add"\nsize = "128M"\n')
    assert main(["run", str(sc)]) == 0
    m = Machine("x86_64", boot_memory="2G", memmap_on_memory="y",
                design=f"{PLUGIN}:RefusesEverything")
    [b] = m.add(0x100000000, "128M")
    assert m.nr_vmemmap_pages(b) == 0 and len(m.memmap_from_buddy[b]) == 512


def test_a_plugin_that_overrides_online_is_not_bypassed():
    """The compiled one-pass online path stands in for Mainline's own
    online_block only: a subclass that changes it is called for every block,
    one at a time or in a run."""
    from hotmem.designs.mainline import Mainline

    calls = []

    class Counting(Mainline):
        def online_block(self, m, blk, online_type):
            calls.append(blk)
            return super().online_block(m, blk, online_type)

    assert designs.get("mainline").batchable and not Counting().batchable
    m = Machine("x86_64", boot_memory="2G", memmap_on_memory="y", design=Counting())
    m.add(0x100000000, "512M")
    m.online(32, "online_movable")
    m.online_blocks([33, 34, 35], "online_movable")
    assert calls == [32, 33, 34, 35]
    plain = Machine("x86_64", boot_memory="2G", memmap_on_memory="y")
    plain.add(0x100000000, "512M")
    plain.online(32, "online_movable")
    plain.online_blocks([33, 34, 35], "online_movable")
    from conftest import snapshots_equal
    assert snapshots_equal(plain.snapshot(), m.snapshot()) == []
