"""/proc/meminfo as fs/proc/meminfo.c prints it, and the figures behind it.

Every line of the era's file is printed.  hotmem models MemTotal (totalram
pages: the managed pages of every zone), MemFree (NR_FREE_PAGES),
MemAvailable (si_mem_available() with no page cache and no reclaimable slab:
free pages less totalreserve_pages), Balloon (NR_BALLOON_PAGES, after
Unaccepted from 6.15: "meminfo: add a per node counter for balloon drivers")
and Hugepagesize (HPAGE_PMD_SIZE, which is the pageblock size on every arch
hotmem models); every other line is
**0** (no page cache, slab, swap, vmalloc or hugetlb is simulated).

Key sets: Debian's 6.1 and 6.12 kernels, as captured (tests/data/oracle);
Zswap/Zswapped appear in 5.19, SecPageTables in 6.0 and Unaccepted in 6.5
(CONFIG_UNACCEPTED_MEMORY, set in Debian's amd64 config).  DirectMap* lines
are arch_report_meminfo() of x86 (4k/2M/1G) and s390 (4k/1M/2G).
"""
from __future__ import annotations

from ..mmzone import Zone
from ..page_alloc import lowmem_reserve, reserve_managed, zone_nr_free_pages
from ..state import MachineState

# (key, first release that prints it); lines without a unit are counts
MEMINFO_KEYS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("MemTotal", (0, 0)), ("MemFree", (0, 0)), ("MemAvailable", (0, 0)), ("Buffers", (0, 0)),
    ("Cached", (0, 0)), ("SwapCached", (0, 0)), ("Active", (0, 0)), ("Inactive", (0, 0)),
    ("Active(anon)", (0, 0)), ("Inactive(anon)", (0, 0)), ("Active(file)", (0, 0)),
    ("Inactive(file)", (0, 0)), ("Unevictable", (0, 0)), ("Mlocked", (0, 0)),
    ("SwapTotal", (0, 0)), ("SwapFree", (0, 0)), ("Zswap", (5, 19)), ("Zswapped", (5, 19)),
    ("Dirty", (0, 0)), ("Writeback", (0, 0)), ("AnonPages", (0, 0)), ("Mapped", (0, 0)),
    ("Shmem", (0, 0)), ("KReclaimable", (0, 0)), ("Slab", (0, 0)), ("SReclaimable", (0, 0)),
    ("SUnreclaim", (0, 0)), ("KernelStack", (0, 0)), ("PageTables", (0, 0)),
    ("SecPageTables", (6, 0)), ("NFS_Unstable", (0, 0)), ("Bounce", (0, 0)),
    ("WritebackTmp", (0, 0)), ("CommitLimit", (0, 0)), ("Committed_AS", (0, 0)),
    ("VmallocTotal", (0, 0)), ("VmallocUsed", (0, 0)), ("VmallocChunk", (0, 0)),
    ("Percpu", (0, 0)), ("HardwareCorrupted", (0, 0)), ("AnonHugePages", (0, 0)),
    ("ShmemHugePages", (0, 0)), ("ShmemPmdMapped", (0, 0)), ("FileHugePages", (0, 0)),
    ("FilePmdMapped", (0, 0)), ("CmaTotal", (0, 0)), ("CmaFree", (0, 0)),
    ("Unaccepted", (6, 5)), ("Balloon", (6, 15)), ("GPUActive", (7, 0)),
    ("GPUReclaim", (7, 0)), ("HugePages_Total", (0, 0)),
    ("HugePages_Free", (0, 0)), ("HugePages_Rsvd", (0, 0)), ("HugePages_Surp", (0, 0)),
    ("Hugepagesize", (0, 0)), ("Hugetlb", (0, 0)),
)
COUNT_KEYS = ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp")
# arch_report_meminfo(); powerpc prints its lines with the radix MMU only
DIRECT_MAP = {"x86_64": ("DirectMap4k", "DirectMap2M", "DirectMap1G"),
              "s390x": ("DirectMap4k", "DirectMap1M", "DirectMap2G"),
              "ppc64-radix-4k": ("DirectMap4k", "DirectMap64k", "DirectMap2M", "DirectMap1G"),
              "ppc64-radix-64k": ("DirectMap4k", "DirectMap64k", "DirectMap2M", "DirectMap1G")}
# lines that follow the kernel config: CONFIG_CMA, and CONFIG_UNACCEPTED_MEMORY
# (selected by x86's INTEL_TDX_GUEST and AMD_MEM_ENCRYPT only)
CMA_KEYS = ("CmaTotal", "CmaFree")


def config_cma(m: MachineState) -> bool:
    """CONFIG_CMA in the Debian kernel config hotmem models for this arch and
    era.  Debian's changelog: "Enable Contiguous Memory Allocator: Enable CMA,
    CMA_SYSFS, DMA_CMA, DMA_NUMA_CMA" in 7.2.2-1~exp1 (so amd64 from 7.2:
    6.12.117 has none, 7.2.6 and 7.3.4 have it; s390x taken the same), and
    "[riscv64] Enable CMA and DMA_CMA" in 7.1~rc3-1~exp1.  arm64 and ppc64el
    have it already in 6.12 (issue 10's captures)."""
    name = m.arch.name
    if name.startswith(("arm64", "ppc64")):
        return True
    if name.startswith("riscv64"):
        return m.kernel.at_least(7, 1)
    return m.kernel.at_least(7, 2)



def totalreserve_pages(m: MachineState, zones: list[Zone] | None = None) -> int:
    """calculate_totalreserve_pages(): per zone the largest lowmem reserve plus
    the high watermark, at most the zone's managed pages."""
    total = 0
    for z in m.zones if zones is None else zones:
        if not z.configured:
            continue
        most = max(lowmem_reserve(m, z)[z.ztype:] + [0]) + z.wmark_high
        total += min(most, reserve_managed(z))
    return total


def figures(m: MachineState, nid: int | None = None) -> dict[str, int]:
    """MemTotal, MemFree, MemAvailable in pages, of the machine or of one node
    (si_meminfo_node for a node: its zones only)."""
    zones = [z for z in m.zones if z.configured and (nid is None or z.nid == nid)]
    total = sum(z.managed_pages for z in zones)
    free = sum(zone_nr_free_pages(m, z) for z in zones)
    # si_mem_available(): free - totalreserve + page cache + reclaimable (both 0)
    avail = max(free - totalreserve_pages(m, zones), 0)
    return {"MemTotal": total, "MemFree": free, "MemAvailable": avail}


def balloon_pages(m: MachineState, nid: int | None = None) -> int:
    """NR_BALLOON_PAGES (6.15) of the machine or of one node: the pages the
    Hyper-V and Xen balloon devices hold (hv_balloon.c alloc_balloon_pages(),
    xen balloon.c balloon_append(); hotmem.drivers.balloons)."""
    total = 0
    for dev in m.devices.values():
        count = getattr(dev, "nr_balloon_pages", None)
        if count is not None:
            total += int(count(m, nid))
    return total


def meminfo_values(m: MachineState) -> dict[str, int]:
    """Every line of the era's /proc/meminfo, in kB (counts for HugePages_*)."""
    k = m.kernel
    kb = m.arch.page_size >> 10
    skip = set() if config_cma(m) else set(CMA_KEYS)
    if not m.arch.pc_layout:
        skip.add("Unaccepted")
    out = {key: 0 for key, since in MEMINFO_KEYS if k.at_least(*since) and key not in skip}
    for key, pages in figures(m).items():
        out[key] = pages * kb
    if "Balloon" in out:
        out["Balloon"] = balloon_pages(m) * kb
    out["Hugepagesize"] = m.arch.pageblock_nr_pages * kb
    for key in DIRECT_MAP.get(m.arch.name, ()):
        out[key] = 0
    return out


def meminfo(m: MachineState) -> str:
    """/proc/meminfo (show_val_kb: "%-16s%8lu kB"; HugePages_*: no unit)."""
    lines = []
    for key, value in meminfo_values(m).items():
        head = f"{key + ':':<16}"
        if key in COUNT_KEYS:
            lines.append(f"{head}{value:8d}")
        elif key == "HardwareCorrupted":   # its own seq_printf: "%5lu kB"
            lines.append(f"{key}: {value:5d} kB")
        else:
            lines.append(f"{head}{value:8d} kB")
    return "".join(line + "\n" for line in lines)


def node_meminfo(m: MachineState, nid: int) -> str:
    """/sys/devices/system/node/nodeN/meminfo (drivers/base/node.c
    node_read_meminfo, 6.x layout; hugetlb_report_node_meminfo at the end).
    MemTotal, MemFree and MemUsed are modelled; the rest is 0."""
    kb = m.arch.page_size >> 10
    f = figures(m, nid)
    total, free = f["MemTotal"] * kb, f["MemFree"] * kb
    rows = [("MemTotal", total), ("MemFree", free), ("MemUsed", total - free)]
    zero = ["SwapCached", "Active", "Inactive", "Active(anon)", "Inactive(anon)",
            "Active(file)", "Inactive(file)", "Unevictable", "Mlocked", "Dirty",
            "Writeback", "FilePages", "Mapped", "AnonPages", "Shmem", "KernelStack",
            "PageTables"]
    if m.kernel.at_least(6, 0):
        zero.append("SecPageTables")
    zero += ["NFS_Unstable", "Bounce", "WritebackTmp", "KReclaimable", "Slab",
             "SReclaimable", "SUnreclaim", "AnonHugePages", "ShmemHugePages",
             "ShmemPmdMapped", "FileHugePages", "FilePmdMapped"]
    if m.kernel.at_least(6, 5) and m.arch.pc_layout:
        zero.append("Unaccepted")
    rows += [(key, 0) for key in zero]
    text = "".join(f"Node {nid} {key + ':':<15} {value:8d} kB\n" for key, value in rows)
    return text + "".join(f"Node {nid} {key + ':':<17}{0:5d}\n"
                          for key in ("HugePages_Total", "HugePages_Free", "HugePages_Surp"))
