"""One scenario under several designs, side by side."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import numpy as np

from . import designs
from .constants import MEM_ONLINE
from .designs.base import Design
from .errors import ConfigError
from .machine import Machine
from .page_alloc import zone_nr_free_pages
from .report import MachineReport, machine_report, memmap_summary
from .scenario import Scenario, StepResult, run_scenario
from .state import DeviceReport, Hazard

Runs = dict[str, tuple[Machine, list[StepResult]]]


class HotZone(TypedDict):
    spanned_pages: int
    present_pages: int
    managed_pages: int
    nr_free_pages: int


class Metrics(TypedDict):
    """What ``hotmem compare`` sets side by side, per design."""

    design: str
    kernel: str
    self_hosted_vmemmap_pages: int
    vmemmap_pages_by_block: dict[str, int]
    blocks_all_memmap: list[int]
    memmap_pages_in_boot_memory: int
    hot_zones: dict[str, HotZone]
    hot_present_pages: int
    hot_managed_pages: int
    totalram_pages: int
    free_blocks_per_order: list[int]
    offlinable_blocks: int
    offlinable_block_ids: list[int]
    busy_blocks: list[int]
    offlinable_holding_foreign_memmap: list[int]
    cross_block_dependencies: list[Hazard]
    blocks_with_memmap_elsewhere: list[int]
    misaligned_free_blocks: dict[str, list[tuple[int, int]]]
    devices: dict[str, DeviceReport]


class CompareEntry(TypedDict):
    metrics: Metrics
    report: MachineReport


def design_overrides(sc: Scenario, design: str | Design) -> dict[str, object]:
    """Machine settings that run this scenario under a design (its name or a
    ``module:attribute``), the design object included."""
    d = designs.get(design)
    return {**d.scenario_overrides(sc.machine), "design": d}


def compare(sc: Scenario, names: list[str]) -> Runs:
    """Run the scenario once per design; keyed by the names as given."""
    if not names:
        raise ConfigError("compare: no designs given")
    overrides = {n: design_overrides(sc, n) for n in names}   # all checked before any run
    return {n: run_scenario(sc, machine=None, on_step=None, **overrides[n]) for n in names}


def offlinable_blocks(m: Machine) -> tuple[list[int], list[int]]:
    """Online hot-added blocks that an offline would accept / refuse right now."""
    ok: list[int] = []
    refused: list[int] = []
    for blk in np.flatnonzero((m.blk_state == MEM_ONLINE) & ~m.blk_early):
        (ok if m.design.offline_check(m, int(blk)) is None else refused).append(int(blk))
    return ok, refused


def where_summary(by_block: dict[int, int], block_pages: int) -> str:
    """Where the vmemmap pages sit, short: "32:32768 33:8192" or "80x512 own"."""
    if not by_block:
        return "-"
    counts = set(by_block.values())
    if len(by_block) > 3 and len(counts) == 1:
        return f"{len(by_block)}x{counts.pop()} own"
    return " ".join(f"{b}:{n}" for b, n in by_block.items())


def dependency_summary(deps: list[Hazard]) -> str:
    """Holders -> dependent blocks, short: "32>63 33>16"."""
    if not deps:
        return "none"
    return " ".join(f"{d['holder']}>{len(d['dependents'])}" for d in deps)


def metrics(m: Machine) -> Metrics:
    hot = [z for z in m.zones if z.present_pages and not z.present_early_pages]
    mm = memmap_summary(m)
    ok, refused = offlinable_blocks(m)
    orders = np.zeros(m.arch.max_page_order + 1, dtype=np.int64)
    for z in m.zones:
        orders += m.pages.nr_free[z.zid].sum(axis=0)
    by_block = m.design.vmemmap_pages_by_block(m)
    deps = m.design.hazards(m)
    holders_online = {d["holder"] for d in deps if d["online_dependents"]}
    return {
        "design": m.design.name, "kernel": str(m.kernel),
        "self_hosted_vmemmap_pages": sum(by_block.values()),
        "vmemmap_pages_by_block": {str(b): n for b, n in by_block.items()},
        "blocks_all_memmap": [b for b, n in by_block.items() if n == m.pages_per_block],
        "memmap_pages_in_boot_memory": mm["memmap_pages_in_boot_memory"],
        "hot_zones": {f"{z.nid}/{z.name}": {"spanned_pages": z.spanned_pages,
                                           "present_pages": z.present_pages,
                                           "managed_pages": z.managed_pages,
                                           "nr_free_pages": zone_nr_free_pages(m, z)}
                      for z in hot},
        "hot_present_pages": sum(z.present_pages for z in hot),
        "hot_managed_pages": sum(z.managed_pages for z in hot),
        "totalram_pages": m.totalram_pages(),
        "free_blocks_per_order": [int(x) for x in orders],
        "offlinable_blocks": len(ok), "offlinable_block_ids": ok, "busy_blocks": refused,
        "offlinable_holding_foreign_memmap": [b for b in ok if b in holders_online],
        "cross_block_dependencies": deps,
        "blocks_with_memmap_elsewhere": sorted({b for d in deps for b in d["dependents"]}),
        "misaligned_free_blocks": {str(b): c for b, c in m.design.misaligned_chunks(m).items()
                                   if c},
        "devices": {name: dev.report(m) for name, dev in m.devices.items()},
    }


def compare_report(runs: Runs) -> dict[str, CompareEntry]:
    return {name: {"metrics": metrics(m), "report": machine_report(m, res)}
            for name, (m, res) in runs.items()}


def format_compare(runs: Runs) -> str:
    names = list(runs)
    table: list[tuple[str, list[object]]] = []
    steps = max(len(res) for _, res in runs.values())
    for i in range(steps):
        label = ""   # every step index is reached by at least one design
        cells: list[object] = []
        for n in names:
            res = runs[n][1]
            if i < len(res):
                r = res[i]
                label = label or f"step {r.step.index:02d} {r.step.op}"
                cells.append(r.result)
            else:
                cells.append("-")
        table.append((label, cells))
    mets = {n: metrics(runs[n][0]) for n in names}
    kb = {n: runs[n][0].arch.page_size >> 10 for n in names}

    # the rows about memmap of one block living in another only say something
    # when a design that can place it there is among them
    rfc = any(runs[n][0].design.has_cross_block_memmap for n in names)

    def row(label: str, fn: Callable[[str], object], rfc_only: bool = False) -> None:
        if rfc or not rfc_only:
            table.append((label, [fn(n) for n in names]))
    row("memmap on hot-added memory (kB)", lambda n: mets[n]["self_hosted_vmemmap_pages"] * kb[n])
    row("vmemmap pages (block:pages)", lambda n: where_summary(
        {int(b): v for b, v in mets[n]["vmemmap_pages_by_block"].items()},
        runs[n][0].pages_per_block), rfc_only=True)
    row("blocks made entirely of memmap", lambda n: len(mets[n]["blocks_all_memmap"]),
        rfc_only=True)
    row("memmap in boot memory (kB)", lambda n: mets[n]["memmap_pages_in_boot_memory"] * kb[n])
    row("hot zones present (pages)", lambda n: mets[n]["hot_present_pages"])
    row("hot zones managed (pages)", lambda n: mets[n]["hot_managed_pages"])
    row("MemTotal (kB)", lambda n: mets[n]["totalram_pages"] * kb[n])
    row("MemFree (kB)", lambda n: sum(zone_nr_free_pages(runs[n][0], z)
                                       for z in runs[n][0].zones) * kb[n])
    row("online hot blocks offlinable now", lambda n: mets[n]["offlinable_blocks"])
    row("  of them holding others' memmap", lambda n: len(
        mets[n]["offlinable_holding_foreign_memmap"]), rfc_only=True)
    row("cross-block memmap (holder>blocks)", lambda n: dependency_summary(
        mets[n]["cross_block_dependencies"]), rfc_only=True)
    row("blocks whose memmap is elsewhere", lambda n: len(mets[n]["blocks_with_memmap_elsewhere"]),
        rfc_only=True)
    row("misaligned buddy blocks (online)", lambda n: sum(
        len(c) for c in mets[n]["misaligned_free_blocks"].values()), rfc_only=True)
    devices = sorted({d for n in names for d in mets[n]["devices"]})

    def device_plugged(dev: str) -> Callable[[str], object]:
        def cell(n: str) -> object:
            r = mets[n]["devices"].get(dev)
            return "-" if r is None else r["plugged_size_bytes"] >> 20
        return cell

    def device_offline(dev: str) -> Callable[[str], object]:
        def cell(n: str) -> object:
            r = mets[n]["devices"].get(dev)
            return "-" if r is None else r["page_offline_pages"]
        return cell
    def device_ballooned(dev: str) -> Callable[[str], object]:
        def cell(n: str) -> object:
            r = mets[n]["devices"].get(dev)
            return "-" if r is None else r.get("ballooned_pages", "-")
        return cell
    for dev in devices:
        row(f"device {dev} plugged (MiB)", device_plugged(dev))
        row(f"device {dev} PageOffline pages", device_offline(dev))
        if any("ballooned_pages" in mets[n]["devices"].get(dev, {}) for n in names):
            row(f"device {dev} ballooned pages", device_ballooned(dev))
    row("max-order free blocks", lambda n: mets[n]["free_blocks_per_order"][-1])

    def free_of_order(o: int) -> Callable[[str], object]:
        def cell(n: str) -> object:
            per_order = mets[n]["free_blocks_per_order"]
            return per_order[o] if o < len(per_order) else "-"
        return cell
    for order in range(max(len(mets[n]["free_blocks_per_order"]) for n in names)):
        row(f"free blocks of order {order}", free_of_order(order))
    # columns as wide as the widest cell (at least 14)
    w = max(14, *(len(n) + 2 for n in names), *(len(str(c)) + 2 for _, cs in table for c in cs))
    out = [f"{'':<36}" + "".join(f"{n:>{w}}" for n in names)]
    out += [f"{label:<36}" + "".join(f"{str(c):>{w}}" for c in cells) for label, cells in table]
    for n in names:
        for d in mets[n]["cross_block_dependencies"]:
            out.append(f"{n}: {runs[n][0].design.format_hazard(d)}")
    return "\n".join(out)
