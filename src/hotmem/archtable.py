"""What the memmap costs on each arch, and whether it can live on the memory."""
from __future__ import annotations

from typing import TypedDict

from .arch import ARCHES
from .kernel import Kernel
from .memory_hotplug import mhp_supports_memmap_on_memory
from .sparse import force_waste_pages, vmemmap_pages_per_block


class ArchRow(TypedDict):
    """One arch at its default memory block size (``hotmem arches --json``)."""

    arch: str
    page_size_bytes: int
    section_size_bytes: int
    block_size_bytes: int
    pageblock_nr_pages: int
    max_page_order: int
    memmap_pages_per_block: int
    memmap_bytes_per_block: int
    memmap_percent: float
    memmap_on_memory_y: bool
    memmap_on_memory_y_reason: str
    memmap_on_memory_force: bool
    memmap_on_memory_force_reason: str
    force_waste_pages_per_block: int | None     # None: force mode unsupported
    memmap_on_memory_since: str | None          # "major.minor"; None: never


def arch_table(kernel: str = "6.12") -> list[ArchRow]:
    """One row per arch for the given kernel release."""
    k = Kernel.parse(kernel)
    rows: list[ArchRow] = []
    for a in ARCHES.values():
        bs = a.block_size
        vm = vmemmap_pages_per_block(a, bs, "y")
        y_ok, y_why = mhp_supports_memmap_on_memory(a, k, "y", bs, bs)
        f_ok, f_why = mhp_supports_memmap_on_memory(a, k, "force", bs, bs)
        rows.append({
            "arch": a.name, "page_size_bytes": a.page_size,
            "section_size_bytes": a.section_size, "block_size_bytes": bs,
            "pageblock_nr_pages": a.pageblock_nr_pages, "max_page_order": a.max_page_order,
            "memmap_pages_per_block": vm,
            "memmap_bytes_per_block": vm * a.page_size,
            "memmap_percent": round(100.0 * a.struct_page_size / a.page_size, 4),
            "memmap_on_memory_y": y_ok, "memmap_on_memory_y_reason": y_why,
            "memmap_on_memory_force": f_ok, "memmap_on_memory_force_reason": f_why,
            "force_waste_pages_per_block": force_waste_pages(a, bs) if f_ok else None,
            "memmap_on_memory_since": ".".join(map(str, a.memmap_on_memory_since))
            if a.memmap_on_memory_since else None,
        })
    return rows


def format_arch_table(rows: list[ArchRow], kernel: str) -> str:
    head = (f"{'arch':<17}{'page':>6}{'block':>8}{'pageblock':>10}{'memmap/blk':>12}"
            f"{'%':>8}  {'mom=y':<6}{'force':<6}{'waste':>6}  reason (y)")
    out = [f"memmap on memory per arch, kernel {kernel} (default block size)", head]
    for r in rows:
        waste = ("" if r["force_waste_pages_per_block"] is None
                 else str(r["force_waste_pages_per_block"]))
        out.append(f"{r['arch']:<17}{r['page_size_bytes'] >> 10:>5}K"
                   f"{r['block_size_bytes'] >> 20:>7}M{r['pageblock_nr_pages']:>10}"
                   f"{r['memmap_pages_per_block']:>12}"
                   f"{r['memmap_percent']:>8.3f}  {'yes' if r['memmap_on_memory_y'] else 'no':<6}"
                   f"{'yes' if r['memmap_on_memory_force'] else 'no':<6}{waste:>6}  "
                   f"{r['memmap_on_memory_y_reason']}"
                   + ("" if r["memmap_on_memory_force"] or not r["memmap_on_memory_y_reason"]
                      or r["memmap_on_memory_force_reason"] == r["memmap_on_memory_y_reason"]
                      else f"; force: {r['memmap_on_memory_force_reason']}"))
    return "\n".join(out)
