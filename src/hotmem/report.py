"""Machine reports: JSON with the kernel's field names, and a readable summary."""
from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

import numpy as np

from .constants import MEM_ONLINE, STATE_NAMES, MemmapMode, OnlinePolicy
from .memory import block_list
from .mmzone import Zone
from .page_alloc import zone_nr_free_pages
from .state import DeviceReport, MachineState
from .views.procfs import meminfo_kb, online_nodes
from .views.sysfs import valid_zones

if TYPE_CHECKING:
    from .scenario import StepResult


class FreeArea(TypedDict):
    nr_free: list[int]


class Watermark(TypedDict):
    min: int
    low: int
    high: int
    promo: int


class ZoneReport(TypedDict):
    node: int
    zone: str
    zone_start_pfn: int
    spanned_pages: int
    present_pages: int
    present_early_pages: int
    managed_pages: int
    nr_free_pages: int
    free_area: FreeArea
    watermark: Watermark


class AltmapReport(TypedDict):
    base_pfn: int
    end_pfn: int
    reserve: int
    free: int
    align: int
    alloc: int


class BlockReport(TypedDict):
    id: int
    phys_index: str
    start_pfn: int
    nr_pages: int
    state: str
    nid: int
    zone: str | None
    valid_zones: str
    early: bool
    group: int | None
    nr_vmemmap_pages: int
    memmap_pages_in_other_memory: int
    altmap: NotRequired[AltmapReport]


class MachineSettings(TypedDict):
    arch: str
    kernel: str
    design: str
    page_size_bytes: int
    section_size_bytes: int
    block_size_bytes: int
    pageblock_order: int
    max_page_order: int
    memmap_on_memory: MemmapMode
    online_policy: OnlinePolicy
    auto_movable_ratio: int
    auto_online_blocks: str
    boot_memory_bytes: int
    min_free_kbytes: int


class StepOutcome(TypedDict):
    block: int
    result: str


class StepReport(TypedDict):
    index: int
    op: str
    args: dict[str, object]
    result: str
    message: str
    blocks: list[int]
    outcomes: NotRequired[list[StepOutcome]]
    expect: NotRequired[str]


class MachineReport(TypedDict):
    machine: MachineSettings
    meminfo_kB: dict[str, int]
    totalram_pages: int
    zones: list[ZoneReport]
    memory_blocks: list[BlockReport]
    devices: list[DeviceReport]
    steps: NotRequired[list[StepReport]]


class MemmapSummary(TypedDict):
    hot_added_blocks: int
    self_hosted_vmemmap_pages: int
    memmap_pages_in_boot_memory: int


def zone_report(m: MachineState, z: Zone) -> ZoneReport:
    nf = m.pages.nr_free[z.zid]
    return {
        "node": z.nid, "zone": z.name, "zone_start_pfn": z.zone_start_pfn,
        "spanned_pages": z.spanned_pages, "present_pages": z.present_pages,
        "present_early_pages": z.present_early_pages, "managed_pages": z.managed_pages,
        "nr_free_pages": zone_nr_free_pages(m, z),
        "free_area": {"nr_free": [int(x) for x in nf.sum(axis=0)]},
        "watermark": {"min": z.wmark_min, "low": z.wmark_low, "high": z.wmark_high,
                      "promo": z.wmark_promo},
    }


def block_report(m: MachineState, blk: int) -> BlockReport:
    s, e = m.block_range(blk)
    zid = int(m.blk_zone[blk])
    out: BlockReport = {
        "id": blk, "phys_index": f"{blk:08x}", "start_pfn": s, "nr_pages": e - s,
        "state": STATE_NAMES[int(m.blk_state[blk])], "nid": int(m.blk_nid[blk]),
        "zone": None if zid < 0 else m.zones[zid].name,
        "valid_zones": valid_zones(m, blk).strip(), "early": bool(m.blk_early[blk]),
        "group": int(m.blk_group[blk]) if m.blk_group[blk] >= 0 else None,
        "nr_vmemmap_pages": m.nr_vmemmap_pages(blk),
        "memmap_pages_in_other_memory": (len(m.memmap_from_buddy[blk])
                                         if blk in m.memmap_from_buddy else 0),
    }
    alt = m.block_altmap(blk)
    if alt is not None:
        out["altmap"] = {"base_pfn": alt.base_pfn, "end_pfn": alt.end_pfn,
                         "reserve": alt.reserve, "free": alt.free, "align": alt.align,
                         "alloc": alt.alloc}
    return out


def machine_report(m: MachineState,
                   results: list[StepResult] | None = None) -> MachineReport:
    """Everything a tool needs, with units in the field names (pages, bytes, kB)."""
    a = m.arch
    rep: MachineReport = {
        "machine": {
            "arch": a.name, "kernel": str(m.kernel), "design": m.design.name,
            "page_size_bytes": a.page_size, "section_size_bytes": a.section_size,
            "block_size_bytes": m.block_size, "pageblock_order": a.pageblock_order,
            "max_page_order": a.max_page_order, "memmap_on_memory": m.memmap_on_memory,
            "online_policy": m.online_policy, "auto_movable_ratio": m.auto_movable_ratio,
            "auto_online_blocks": m.auto_online_blocks, "boot_memory_bytes": m.boot_memory,
            "min_free_kbytes": m.min_free_kbytes,
        },
        "meminfo_kB": meminfo_kb(m),
        "totalram_pages": m.totalram_pages(),
        "zones": [zone_report(m, z) for nid in online_nodes(m) for z in m.zones
                  if z.nid == nid and z.configured],
        "memory_blocks": [block_report(m, int(b)) for b in m.present_blocks()],
        "devices": [dev.report(m) for dev in m.devices.values()],
    }
    if results is not None:
        rep["steps"] = [step_report(r) for r in results]
    return rep


def step_report(r: StepResult) -> StepReport:
    out: StepReport = {"index": r.step.index, "op": r.step.op, "args": r.step.args,
           "result": r.result, "message": r.message, "blocks": r.blocks}
    if r.outcomes:
        out["outcomes"] = [{"block": b, "result": o} for b, o in r.outcomes]
    if r.step.expect is not None:
        out["expect"] = r.step.expect
    return out


def step_line(r: StepResult) -> str:
    """One line per step: what ran and how it ended."""
    args = " ".join(f"{k}={v}" for k, v in r.step.args.items())
    head = f"[{r.step.index:02d}] {r.step.op:<7} {args}"
    if r.ok:
        tail = "ok"
        if r.blocks:
            tail += f" ({_blocks(r.blocks)})"
    else:
        tail = f"{r.errno}: {r.message}"
        if r.outcomes:
            good = [b for b, o in r.outcomes if o == "ok"]
            if good:
                tail += f" [{len(good)} block(s) ok]"
    if r.step.expect is not None and not r.expected_ok:
        tail += f"  (expected {r.step.expect})"
    return f"{head}: {tail}"


def _blocks(ids: list[int]) -> str:
    return block_list(ids) + (f", {len(ids)} blocks" if len(ids) > 4 else "")


def memmap_summary(m: MachineState) -> MemmapSummary:
    """Where the memmap of hot-added memory lives, in pages."""
    on_memory, elsewhere = m.memmap_of_hot_blocks()
    return {"hot_added_blocks": len(m.hot_blocks()), "self_hosted_vmemmap_pages": on_memory,
            "memmap_pages_in_boot_memory": elsewhere}


def format_summary(m: MachineState, results: list[StepResult] | None = None) -> str:
    a = m.arch
    kb = a.page_size >> 10
    lines = [f"{a.name}, kernel {m.kernel} ({m.design.name}), boot memory "
             f"{m.boot_memory >> 20} MiB, memory blocks of {m.block_size >> 20} MiB, "
             f"memmap_on_memory={m.memmap_on_memory}"]
    if results:
        lines += [step_line(r) for r in results]
    lines.append("")
    lines.append(f"{'zone':<12}{'start_pfn':>12}{'spanned':>12}{'present':>12}"
                 f"{'managed':>12}{'free':>12}")
    for nid in online_nodes(m):
        for z in m.zones:
            if z.nid == nid and z.configured and (z.present_pages or z.spanned_pages):
                lines.append(f"{f'{nid}/{z.name}':<12}{z.zone_start_pfn:>12}{z.spanned_pages:>12}"
                             f"{z.present_pages:>12}{z.managed_pages:>12}"
                             f"{zone_nr_free_pages(m, z):>12}")
    mi = meminfo_kb(m)
    mm = memmap_summary(m)
    lines.append(f"MemTotal {mi['MemTotal']} kB, MemFree {mi['MemFree']} kB")
    hot = m.hot_blocks()
    online = int(np.count_nonzero(m.blk_state[hot] == MEM_ONLINE))
    lines.append(f"hot-added blocks: {len(hot)} ({online} online); memmap of hot-added memory: "
                 f"{mm['self_hosted_vmemmap_pages'] * kb} kB on the memory itself, "
                 f"{mm['memmap_pages_in_boot_memory'] * kb} kB in boot memory")
    lines += [f"cross-block memmap: {m.design.format_hazard(h)}" for h in m.design.hazards(m)]
    for dev in m.devices.values():
        r = dev.report(m)
        blocks = r["blocks"]
        lines.append(f"device {r['name']} ({r['driver']}): plugged "
                     f"{r['plugged_size_bytes'] >> 20} MiB in {len(blocks)} block(s) "
                     f"(group {r['group']}, {r['group_kind']}); "
                     f"memmap {r['memmap_on_memory_pages']} pages on the memory, "
                     f"{r['memmap_in_other_memory_pages']} elsewhere; "
                     f"{r['page_offline_pages']} PageOffline pages")
        if "ballooned_pages" in r:
            lines.append(f"  balloon: {r['ballooned_pages']} pages; the guest holds "
                         f"{r.get('held_bytes', 0) >> 10} kB of the device")
        lines += [f"  {n}" for n in r["notes"]]
    return "\n".join(lines)
