"""One scenario under several designs, side by side."""
from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .hotplug import offline_precheck
from .machine import MEM_ONLINE, Machine
from .report import machine_report, memmap_summary
from .scenario import Scenario, StepResult, run_scenario
from .views.procfs import zone_nr_free_pages

DESIGN_NAMES = ("none", "mainline")


def design_overrides(sc: Scenario, design: str) -> dict:
    """Machine settings that select a design for this scenario."""
    mode = sc.machine.get("memmap_on_memory", "n")
    if design == "none":
        return {"memmap_on_memory": "n", "design": "mainline"}
    if design == "mainline":
        return {"memmap_on_memory": mode if str(mode).lower() not in ("n", "0", "false")
                else "y", "design": "mainline"}
    raise ConfigError(f"design {design!r} is not one of {', '.join(DESIGN_NAMES)}")


def compare(sc: Scenario, designs: list[str]) -> dict[str, tuple[Machine, list[StepResult]]]:
    if not designs:
        raise ConfigError("compare: no designs given")
    return {d: run_scenario(sc, **design_overrides(sc, d)) for d in designs}


def offlinable_blocks(m: Machine) -> tuple[list[int], list[int]]:
    """Online hot-added blocks that an offline would accept / refuse right now."""
    ok, refused = [], []
    for blk in np.flatnonzero((m.blk_state == MEM_ONLINE) & ~m.blk_early):
        (ok if offline_precheck(m, int(blk)) is None else refused).append(int(blk))
    return ok, refused


def metrics(m: Machine) -> dict:
    hot = [z for z in m.zones if z.present_pages and not z.present_early_pages]
    mm = memmap_summary(m)
    ok, refused = offlinable_blocks(m)
    orders = np.zeros(m.arch.max_page_order + 1, dtype=np.int64)
    for z in m.zones:
        orders += m.pages.nr_free[z.zid].sum(axis=0)
    return {
        "self_hosted_vmemmap_pages": mm["self_hosted_vmemmap_pages"],
        "memmap_pages_in_boot_memory": mm["memmap_pages_in_boot_memory"],
        "hot_zones": {f"{z.nid}/{z.name}": {"present_pages": z.present_pages,
                                           "managed_pages": z.managed_pages,
                                           "nr_free_pages": zone_nr_free_pages(m, z)}
                      for z in hot},
        "totalram_pages": m.totalram_pages(),
        "free_blocks_per_order": [int(x) for x in orders],
        "offlinable_blocks": len(ok), "busy_blocks": refused,
    }


def compare_report(runs: dict) -> dict:
    return {name: {"metrics": metrics(m), "report": machine_report(m, res)}
            for name, (m, res) in runs.items()}


def format_compare(runs: dict) -> str:
    names = list(runs)
    w = max(14, *(len(n) + 2 for n in names))
    out = [f"{'':<36}" + "".join(f"{n:>{w}}" for n in names)]
    steps = max(len(res) for _, res in runs.values())
    for i in range(steps):
        label = None
        cells = []
        for n in names:
            res = runs[n][1]
            if i < len(res):
                r = res[i]
                label = label or f"step {r.step.index:02d} {r.step.op}"
                cells.append(r.result)
            else:
                cells.append("-")
        out.append(f"{label:<36}" + "".join(f"{c:>{w}}" for c in cells))
    mets = {n: metrics(runs[n][0]) for n in names}
    kb = {n: runs[n][0].arch.page_size >> 10 for n in names}

    def row(label, fn):
        out.append(f"{label:<36}" + "".join(f"{fn(n):>{w}}" for n in names))
    row("memmap on hot-added memory (kB)", lambda n: mets[n]["self_hosted_vmemmap_pages"] * kb[n])
    row("memmap in boot memory (kB)", lambda n: mets[n]["memmap_pages_in_boot_memory"] * kb[n])
    row("MemTotal (kB)", lambda n: mets[n]["totalram_pages"] * kb[n])
    row("MemFree (kB)", lambda n: sum(zone_nr_free_pages(runs[n][0], z)
                                       for z in runs[n][0].zones) * kb[n])
    row("online hot blocks offlinable now", lambda n: mets[n]["offlinable_blocks"])
    row("max-order free blocks", lambda n: mets[n]["free_blocks_per_order"][-1])
    return "\n".join(out)
