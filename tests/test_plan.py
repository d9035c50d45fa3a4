"""hotmem plan: answers found by search, each proved by scenarios run here
independently (written out by hand, not taken from the plan)."""
import json

import pytest

from hotmem.cli import main
from hotmem.scenario import loads_scenario, run_scenario

GiB, MiB = 1 << 30, 1 << 20


def add_result(mode: str, size: int, kernel: str = "6.12") -> tuple[str, str]:
    sc = loads_scenario(f'[machine]\narch = "x86_64"\nkernel = "{kernel}"\n'
                        f'boot_memory = "1G"\nmemmap_on_memory = "{mode}"\n'
                        f'[[step]]\nop = "add"\nsize = {size}\n')
    _, res = run_scenario(sc)
    return res[0].result, res[0].message


@pytest.fixture(scope="module")
def plan_612_both(tmp_path_factory):
    """The plan once: its JSON (as --json prints it), its text, its proofs."""
    from hotmem import plan
    p = plan.make_plan({"arch": "x86_64", "kernel": "6.12", "boot_memory": "1G"})
    data = json.loads(json.dumps({k: v for k, v in p.items() if not k.startswith("_")}))
    proofs = plan.write_proofs(p, tmp_path_factory.mktemp("proofs"))
    return data, plan.format_plan(p), proofs


def test_proof_files_run_as_scenarios(plan_612_both, capsys):
    names = sorted(f.name for f in plan_612_both[2])
    assert names == [f"{q}-mom-{m}-{r}.toml" for q in ("growth", "single")
                     for m in ("n", "y") for r in ("fail", "ok")]
    for f in plan_612_both[2]:
        # the failing proof carries its errno as expect: both exit 0
        assert main(["run", str(f)]) == 0, f.name
    out = capsys.readouterr().out
    assert out.count("E2BIG: Hotplug memory") == 2 and out.count("ENOMEM: hot-add") == 2


@pytest.fixture(scope="module")
def plan_612(plan_612_both):
    return plan_612_both[0]


def test_largest_single_add_x86_612_1g(plan_612, capsys):
    n, y = plan_612["largest_single_add"]["n"], plan_612["largest_single_add"]["y"]
    # n: 430 blocks' memmap (512 pages each, PMD-mapped) fits in the 220341
    # pages free above the watermarks of a 1 GiB VM, 431 blocks' does not
    assert n == 430 * 128 * MiB
    # y: each block hosts its own memmap; the add ends at the simulated address
    # space (1 << 47) from the first hot-add address at 4 GiB
    assert y == (1 << 47) - 4 * GiB
    assert add_result("n", n) == ("ok", "")
    r, msg = add_result("n", n + 128 * MiB)
    assert r == "ENOMEM" and "the memmap needs 220672 pages (862 MiB)" in msg \
        and "220341 free above the watermarks" in msg
    assert add_result("y", y) == ("ok", "")
    r, msg = add_result("y", y + 128 * MiB)
    assert r == "E2BIG" and "exceeds maximum addressable address 0x7fffffffffff" in msg
    proofs = plan_612["proofs"]["largest_single_add"]
    assert proofs["n"]["succeeds"]["result"] == "ok"
    assert proofs["n"]["fails"]["result"] == "ENOMEM"
    assert proofs["y"]["fails"]["adds_bytes"] == [y + 128 * MiB]


def test_plan_prints_each_answer_with_its_proof(plan_612_both):
    out = plan_612_both[1]
    assert ("  memmap_on_memory=n: 53G+768M (57713623040 bytes)\n"
            "    add 53G+768M: ok\n"
            "    add 53G+896M: ENOMEM: hot-add of [mem 0x100000000-0xe77ffffff] failed") in out
    assert ("  memmap_on_memory=y: 127T+1020G (140733193388032 bytes)\n"
            "    add 127T+1020G: ok\n"
            "    add 127T+1020G+128M: E2BIG: ") in out


def test_growth_612(plan_612):
    g = plan_612["largest_total_growth"]
    # offline blocks leave boot memory as it is: a second add finds 181 pages
    assert g == {"n": 430 * 128 * MiB, "y": (1 << 47) - 4 * GiB}
    fails = plan_612["proofs"]["largest_total_growth"]["n"]["fails"]
    assert fails["adds_bytes"] == [430 * 128 * MiB, 128 * MiB]
    assert "node 0 has 181 free above the watermarks" in fails["message"]
    # the proof scenario runs as it is printed, and ends with the expected errno
    sc = loads_scenario(fails["scenario"])
    _, res = run_scenario(sc)
    assert [r.result for r in res] == ["ok", "ENOMEM"] and res[-1].expected_ok


def test_61_multiblock_adds_fall_back_to_boot_memory(capsys):
    """Before 6.8 only single-block requests host their memmap: the largest
    single add is the same with and without memmap on memory, and growth by
    single blocks goes on after the boot memory is used up."""
    assert main(["plan", "--arch", "x86_64", "--kernel", "6.1", "--boot-memory", "1G",
                 "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["largest_single_add"] == {"n": 430 * 128 * MiB, "y": 430 * 128 * MiB}
    gy = p["proofs"]["largest_total_growth"]["y"]
    assert gy["complete"] is False and gy["fails"] is None
    assert gy["succeeds"]["adds_bytes"] == [430 * 128 * MiB] + [128 * MiB] * 15
    assert p["largest_total_growth"]["y"] == (430 + 15) * 128 * MiB


def test_target_settings_ranked(capsys):
    assert main(["plan", "--arch", "x86_64", "--kernel", "6.12", "--boot-memory", "1G",
                 "--target", "64G", "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["target"]
    good = [s for s in t["settings"] if s["comes_up"] and s["stays_offlinable"]]
    assert good and all(s["settings"]["memmap_on_memory"] != "n" for s in good)
    # 64 GiB of x86_64 memmap is 1 GiB (1.5625 %), on the memory itself
    assert {s["memmap_bytes"] for s in good} == {GiB}
    assert {s["memmap_in_boot_memory_bytes"] for s in good} == {0}
    # n: the 1 GiB of memmap does not fit in a 1 GiB VM
    nos = [s for s in t["settings"] if s["settings"]["memmap_on_memory"] == "n"]
    assert nos and all(s["why_not"].startswith("add: ENOMEM") for s in nos)
    # online_kernel puts the DIMM in ZONE_NORMAL, where the unmovable load lands
    kern = [s for s in t["settings"] if s["settings"]["auto_online_blocks"] == "online_kernel"
            and s["settings"]["memmap_on_memory"] == "y"]
    assert kern and all(s["why_not"].startswith("offline: EBUSY") for s in kern)
    first = good[0]["scenario"]
    _, res = run_scenario(loads_scenario(first))
    assert [r.result for r in res] == ["ok", "ok", "ok"]


def test_offlinable_now_of_a_scenario(tmp_path, capsys):
    p = tmp_path / "s.toml"
    p.write_text('[machine]\narch = "x86_64"\nkernel = "6.12"\nboot_memory = "1G"\n'
                 'memmap_on_memory = "y"\n'
                 '[[step]]\nop = "add"\nsize = "512M"\n'
                 '[[step]]\nop = "online"\nblocks = [32, 33]\ntype = "online_kernel"\n'
                 '[[step]]\nop = "online"\nblocks = [34, 35]\ntype = "online_movable"\n'
                 '[[step]]\nop = "alloc"\nkind = "unmovable"\nzone = "Normal"\npages = 2000\n'
                 'placement = "lowest"\n')
    from hotmem.plan import offlinable_now
    from hotmem.scenario import load_scenario
    m, res = run_scenario(load_scenario(p))
    assert all(r.ok for r in res)
    o = offlinable_now(m)
    refused = {r["block"]: r["errno"] for r in o["refused"]}
    assert 34 in o["offlinable"] and 35 in o["offlinable"]
    assert refused[32] == "EBUSY"
    assert refused[0] == "EINVAL"


@pytest.mark.parametrize("argv, key", [
    (["--arch", "vax"], "vax"),
    (["--boot-memory", "1Q"], "boot_memory"),
    (["--target", "1Q"], "--target"),
    (["--online-policy", "mine"], "online_policy"),
    (["--scenario", "/nonexistent.toml"], "/nonexistent.toml"),
])
def test_bad_plan_input_exit_2(capsys, argv, key):
    assert main(["plan"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hotmem: error: ") and err.count("\n") == 1 and key in err
