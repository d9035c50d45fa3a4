"""Snapshots: a machine's memory state read from the kernel's files, and a
``Machine`` built from it, so a scenario can start from a real machine.

    hotmem snapshot [ROOT] --out FILE          (ROOT: "/" or any tree holding
                                                proc/ and sys/: a hotmem export,
                                                an oracle capture step)
    hotmem run SCENARIO --from FILE            ([machine] snapshot = "FILE")

Reading never writes under ROOT and needs no privilege: what cannot be read
(/proc/kpageflags, /proc/pagetypeinfo and the addresses of /proc/iomem are
root-only) is listed in the snapshot's ``source.unreadable`` and the machine
is built from what could be read (see ``build_machine``).

The format (JSON, ``"format": "hotmem-snapshot"``, ``"version": 1``):

``kernel``      {"release", "era"} (/proc/sys/kernel/osrelease)
``arch``        hotmem arch name, from uname machine (/proc/sys/kernel/arch)
                and the pageblock order (/proc/pagetypeinfo) or page size
``block_size``  memory_block_size_bytes()
``settings``    memmap_on_memory, online_policy, auto_movable_ratio,
                auto_movable_numa_aware (memory_hotplug parameters),
                auto_online_blocks, min_free_kbytes, thp
``nodes``       {"possible": N, "online": [...]}
``boot_ranges`` [[start_pfn, end_pfn], ...]: the System RAM of boot memory
``zones``       per node and zone: start_pfn, spanned, present, managed, cma,
                free, min, low, high, promo (null before 6.12)
``free_blocks`` per node, zone, migratetype (null: buddyinfo only) and order
``buddyinfo``   per node and zone, free blocks per order (pagetypeinfo caps a
                list at 100000)
``pageblocks``  per node and zone: pageblocks by migratetype (pagetypeinfo)
``blocks``      {"ids", "state", "node", "zone", "hot", "group"}: one entry per
                memory block; zone is the online block's zone ("" offline or
                spanning zones); hot: added after boot
``groups``      one per hot-added device: id, driver, node, start_pfn, nr_pages,
                memmap_on_memory, name (the ACPI device or iomem resource)
``pages``       null, or page state from kpageflags over [start_pfn, end_pfn):
                {"free", "reserved", "unmovable", "vmemmap", "nomap"} as flat
                [start, end, start, end, ...] pfn runs; "nomap" are online pages
                with no flag at all (memmap of hot-added memory taken from the
                buddy, other kernel pages); every other online page is movable.
``source``      root, what was read, what could not be read and why, notes.

Boot memory versus hot-added memory: a block bound to an ACPI memory device
(``memoryN/firmware_node`` -> PNP0C80, which acpi_bind_memory_blocks()
creates) was hot-added by the ACPI driver, one device per memory group; a
block in a driver-managed resource ("System RAM (virtio_mem)", "System RAM
(kmem)") by that driver; in an oracle capture step, the DIMMs its manifest
lists.  Every other block is boot memory, whose System RAM ranges come from
/proc/iomem (whole memory blocks when its addresses are hidden).
"""
from __future__ import annotations

import json
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import designs
from .arch import get_arch
from .constants import (
    MEM_OFFLINE,
    MEM_ONLINE,
    MIGRATE_MOVABLE,
    MIGRATE_TYPES,
    MIGRATE_UNMOVABLE,
    P_RESERVED,
    P_UNMOVABLE,
    P_VMEMMAP,
    SECTION_HAS_MEM_MAP,
    SECTION_IS_EARLY,
    SECTION_IS_ONLINE,
    SECTION_MARKED_PRESENT,
    ZONE_MOVABLE,
    pageblock_lists,
)
from .errors import ConfigError
from .kernel import Kernel
from .machine import Machine
from .memblock import zone_splitter
from .memremap import VmemAltmap
from .safeio import write_file
from .sparse import memmap_units, populate_altmap, vmemmap_pages_per_block
from .state import MachineState, MemoryGroup

FORMAT = "hotmem-snapshot"
VERSION = 1
MIGRATETYPE_IDS = {"Unmovable": 0, "Movable": 1, "Reclaimable": 2, "HighAtomic": 3, "CMA": 4,
                   "Isolate": 5}
UNAME_ARCH = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64", "s390x": "s390x",
              "ppc64le": "ppc64", "ppc64": "ppc64", "riscv64": "riscv64"}
# (family, pageblock order) -> hotmem arch, for families with several page sizes
BY_PAGEBLOCK = {("arm64", 9): "arm64-4k", ("arm64", 11): "arm64-16k",
                ("arm64", 13): "arm64-64k", ("ppc64", 9): "ppc64-radix-4k",
                ("ppc64", 5): "ppc64-radix-64k", ("ppc64", 8): "ppc64-hash-64k"}
BY_PAGE_SIZE = {("arm64", 4096): "arm64-4k", ("arm64", 16384): "arm64-16k",
                ("arm64", 65536): "arm64-64k", ("ppc64", 4096): "ppc64-radix-4k"}
DRIVER_RESOURCES = {"System RAM (virtio_mem)": "virtio_mem", "System RAM (kmem)": "kmem"}

# kpageflags bits (include/uapi/linux/kernel-page-flags.h)
KPF_SLAB, KPF_BUDDY, KPF_NOPAGE = 1 << 7, 1 << 10, 1 << 20
KPF_RESERVED, KPF_OWNER_PRIVATE = 1 << 32, 1 << 37
KPF_MOVABLE = sum(1 << b for b in (5, 11, 12, 13, 14, 18, 21, 22, 33))  # LRU MMAP ANON
# SWAPCACHE SWAPBACKED UNEVICTABLE KSM THP MLOCKED: user and page-cache pages
CAT_NOPAGE, CAT_FREE, CAT_MOVABLE, CAT_VMEMMAP, CAT_RESERVED, CAT_NOMAP, CAT_UNMOVABLE = range(7)
PAGE_CATS = {"free": CAT_FREE, "reserved": CAT_RESERVED, "unmovable": CAT_UNMOVABLE,
             "vmemmap": CAT_VMEMMAP, "nomap": CAT_NOMAP}
KPF_CHUNK = 1 << 22
PAGETYPEINFO_CAP = 100000
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


# ---------------------------------------------------------------- reading

@dataclass
class Reader:
    """Read-only access to ROOT/proc and ROOT/sys; remembers what failed."""

    root: Path
    read: list[str] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def text(self, rel: str, required: bool = False) -> str | None:
        try:
            with open(self.path(rel), "rb") as fh:
                data = fh.read().decode(errors="replace")
        except OSError as err:
            if required:
                raise ConfigError(f"{self.path(rel)}: cannot read: {err.strerror}") from None
            self.unreadable[rel] = err.strerror or type(err).__name__
            return None
        self.read.append(rel)
        return data

    def link(self, rel: str) -> str | None:
        try:
            return os.readlink(self.path(rel))
        except OSError:
            return None


def _nums(text: str) -> list[int]:
    return [int(x.lstrip(">")) for x in text.split()]


def parse_zoneinfo(text: str) -> list[dict[str, Any]]:
    """The zone sections of /proc/zoneinfo: node, zone and the counters."""
    zones = []
    for sec in re.split(r"(?m)^(?=Node \d+, zone)", text):
        head = re.match(r"Node (\d+), zone\s+(\S+)", sec)
        if not head:
            continue
        z: dict[str, Any] = {"node": int(head.group(1)), "zone": head.group(2)}
        for key, name in (("pages free", "free"), ("min", "min"), ("low", "low"),
                          ("high", "high"), ("promo", "promo"), ("spanned", "spanned"),
                          ("present", "present"), ("managed", "managed"), ("cma", "cma")):
            hit = re.search(rf"(?m)^\s+{key}\s+(\d+)$", sec)
            z[name] = int(hit.group(1)) if hit else None
        hit = re.search(r"(?m)^\s+start_pfn:\s+(\d+)$", sec)
        z["start_pfn"] = int(hit.group(1)) if hit else None
        zones.append(z)
    return zones


def parse_buddyinfo(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        hit = re.match(r"Node (\d+), zone\s+(\S+)\s+(.*)$", line)
        if hit:
            out.append({"node": int(hit.group(1)), "zone": hit.group(2),
                        "migratetype": None, "counts": _nums(hit.group(3))})
    return out


def parse_pagetypeinfo(text: str) -> tuple[int | None, list[dict[str, Any]],
                                           list[dict[str, Any]]]:
    """(pageblock order, free blocks per migratetype, pageblocks per migratetype)."""
    order = re.search(r"Page block order: (\d+)", text)
    free = []
    for hit in re.finditer(r"(?m)^Node\s+(\d+), zone\s+(\S+), type\s+(\S+)\s+(.*)$", text):
        free.append({"node": int(hit.group(1)), "zone": hit.group(2),
                     "migratetype": hit.group(3), "counts": _nums(hit.group(4))})
    blocks = []
    head = re.search(r"(?m)^Number of blocks type\s+(.*)$", text)
    if head:
        names = head.group(1).split()
        for hit in re.finditer(r"(?m)^Node (\d+), zone\s+(\S+)\s+([\d ]+)$", text):
            blocks.append({"node": int(hit.group(1)), "zone": hit.group(2),
                           **dict(zip(names, _nums(hit.group(3)), strict=True))})
    return (int(order.group(1)) if order else None), free, blocks


def parse_iomem(text: str) -> list[tuple[int, int, str, list[str]]] | None:
    """Top-level System RAM resources (start, end inclusive, name, child names);
    None when the addresses are hidden (read without CAP_SYS_ADMIN: all zero)."""
    out: list[tuple[int, int, str, list[str]]] = []
    hidden = True
    for line in text.splitlines():
        hit = re.match(r"^(\s*)([0-9a-f]+)-([0-9a-f]+) : (.*)$", line)
        if not hit:
            continue
        s, e = int(hit.group(2), 16), int(hit.group(3), 16)
        if e:
            hidden = False
        if not hit.group(1) and hit.group(4).startswith("System RAM"):
            out.append((s, e, hit.group(4), []))
        elif hit.group(1) and out and out[-1][0] <= s <= out[-1][1]:
            out[-1][3].append(hit.group(4))
    return None if hidden else out


def _arch_name(r: Reader, pageblock_order: int | None, manifest: dict[str, Any] | None,
               arch: str | None) -> str:
    if arch:
        get_arch(arch)
        return arch
    machine = (r.text("proc/sys/kernel/arch") or "").strip()
    if not machine and manifest:
        machine = "x86_64" if "x86_64" in " ".join(manifest.get("qemu_cmdline", [])) else ""
    if not machine and r.root.resolve() == Path("/"):
        machine = platform.machine()
    family = UNAME_ARCH.get(machine)
    if family is None:
        raise ConfigError(f"{r.root}: cannot tell the architecture (uname machine "
                          f"{machine or 'unknown'!r}); give --arch")
    if family in ("x86_64", "s390x", "riscv64"):
        return family
    if pageblock_order is not None and (family, pageblock_order) in BY_PAGEBLOCK:
        return BY_PAGEBLOCK[family, pageblock_order]
    if r.root.resolve() == Path("/"):
        size = os.sysconf("SC_PAGE_SIZE")
        if family == "ppc64" and size == 65536:
            mmu = r.text("proc/cpuinfo") or ""
            return "ppc64-hash-64k" if re.search(r"(?m)^MMU\s*:\s*Hash", mmu) \
                else "ppc64-radix-64k"
        if (family, size) in BY_PAGE_SIZE:
            return BY_PAGE_SIZE[family, size]
    raise ConfigError(f"{r.root}: cannot tell the page size of this {machine} machine "
                      "(/proc/pagetypeinfo unreadable); give --arch")


def _small(path: str) -> str | None:
    """A small sysfs attribute, read with one read(2) (thousands of blocks)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        return os.read(fd, 4096).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _blocks(r: Reader) -> list[dict[str, Any]]:
    mem = str(r.path("sys/devices/system/memory"))
    try:
        ids = sorted(int(e.name[6:]) for e in os.scandir(mem)
                     if e.name.startswith("memory") and e.name[6:].isdigit())
    except OSError as err:
        raise ConfigError(f"{mem}: cannot read: {err.strerror}") from None
    # the node of each block: nodeN/memoryM links (one listing per node);
    # without a node tree, the block's own nodeN entry
    node_of: dict[int, int] = {}
    node_dir = str(r.path("sys/devices/system/node"))
    try:
        nodes = [e.name for e in os.scandir(node_dir)
                 if e.name.startswith("node") and e.name[4:].isdigit()]
    except OSError:
        nodes = []
    for n in nodes:
        try:
            for e in os.scandir(f"{node_dir}/{n}"):
                if e.name.startswith("memory") and e.name[6:].isdigit():
                    node_of[int(e.name[6:])] = int(n[4:])
        except OSError:
            pass
    out = []
    for blk in ids:
        d = f"{mem}/memory{blk}"
        state = (_small(f"{d}/state") or "").strip()
        zones = (_small(f"{d}/valid_zones") or "").split()
        nid = node_of.get(blk)
        if nid is None:
            try:
                nid = next((int(n[4:]) for n in os.listdir(d)
                            if n.startswith("node") and n[4:].isdigit()), 0)
            except OSError:
                nid = 0
        try:
            fw: str | None = os.readlink(f"{d}/firmware_node")
        except OSError:
            fw = None
        out.append({"id": blk, "state": state, "node": nid,
                    "zone": zones[0] if state == "online" and zones and zones[0] != "none"
                    else "",
                    "firmware_node": os.path.basename(fw) if fw else None})
    if not out:
        raise ConfigError(f"{mem}: no memory blocks")
    r.read.append("sys/devices/system/memory/memory*/{state,valid_zones,node*,firmware_node}")
    return out


def _manifest(root: Path) -> dict[str, Any] | None:
    """An oracle capture step (CAPTURE/steps/NN-name/): the capture's manifest."""
    path = root.resolve().parent.parent / "manifest.json"
    if root.resolve().parent.name != "steps" or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_snapshot(root: str | Path = "/", arch: str | None = None) -> dict[str, Any]:
    """Read a machine's memory state from ROOT/proc and ROOT/sys (read only)."""
    r = Reader(Path(root))
    if not r.path("sys/devices/system/memory").is_dir():
        raise ConfigError(f"{root}: no sys/devices/system/memory: not a machine's root "
                          "(a tree holding proc/ and sys/)")
    notes: list[str] = []
    manifest = _manifest(r.root)
    release = (r.text("proc/sys/kernel/osrelease") or "").strip()
    if not release and manifest:
        release = str(manifest.get("kernel_release") or manifest.get("era") or "")
    if not release:
        raise ConfigError(f"{root}: no proc/sys/kernel/osrelease: cannot tell the kernel era")
    era = Kernel.parse(release)
    zoneinfo = parse_zoneinfo(r.text("proc/zoneinfo", required=True) or "")
    pti = r.text("proc/pagetypeinfo")
    pb_order, free_by_type, pageblocks = parse_pagetypeinfo(pti) if pti else (None, [], [])
    buddy = parse_buddyinfo(r.text("proc/buddyinfo") or "")
    arch_name = _arch_name(r, pb_order, manifest, arch)
    a = get_arch(arch_name)
    if pb_order is not None and pb_order != a.pageblock_order:
        raise ConfigError(f"{root}: pageblock order {pb_order} is not {arch_name}'s "
                          f"({a.pageblock_order})")
    block_size = int((r.text("sys/devices/system/memory/block_size_bytes", True) or "0"), 16)
    blocks = _blocks(r)

    params = "sys/module/memory_hotplug/parameters"
    mom = (r.text(f"{params}/memmap_on_memory") or "N").strip()
    settings = {
        "memmap_on_memory": {"Y": "y", "N": "n", "force": "force"}.get(mom, "n"),
        "online_policy": (r.text(f"{params}/online_policy") or "contig-zones").strip(),
        "auto_movable_ratio": int((r.text(f"{params}/auto_movable_ratio") or "301").strip()),
        "auto_movable_numa_aware":
            (r.text(f"{params}/auto_movable_numa_aware") or "Y").strip() == "Y",
        "auto_online_blocks":
            (r.text("sys/devices/system/memory/auto_online_blocks") or "offline").strip(),
        "min_free_kbytes": None, "thp": True,
    }
    mfk = r.text("proc/sys/vm/min_free_kbytes")
    if mfk is not None:
        settings["min_free_kbytes"] = int(mfk)
    thp = r.text("sys/kernel/mm/transparent_hugepage/enabled")
    if thp is not None:
        settings["thp"] = "[never]" not in thp

    possible = r.text("sys/devices/system/node/possible")
    nids = {b["node"] for b in blocks} | {z["node"] for z in zoneinfo} | {0}
    nr_nodes = max(nids) + 1
    if possible:
        nr_nodes = max(nr_nodes, max(int(x) for x in re.split(r"[-,]", possible.strip())) + 1)
    nr_nodes = min(nr_nodes, 64)

    # boot memory and hot-added devices
    ps = a.page_shift
    ppb = block_size >> ps
    iomem_text = r.text("proc/iomem")
    resources = parse_iomem(iomem_text) if iomem_text else None
    if iomem_text and resources is None:
        r.unreadable["proc/iomem addresses"] = "hidden (all zero) without CAP_SYS_ADMIN"
    groups: list[dict[str, Any]] = []
    block_group: dict[int, int] = {}
    by_device: dict[str, list[int]] = {}
    for b in blocks:
        if b["firmware_node"] and b["firmware_node"].startswith("PNP0C80"):
            by_device.setdefault(b["firmware_node"], []).append(b["id"])
    for name, ids in sorted(by_device.items(), key=lambda kv: min(kv[1])):
        gid = int(name.split(":")[1], 16) if re.fullmatch(r"PNP0C80:[0-9a-f]+", name) \
            else len(groups)
        groups.append({"id": gid, "driver": "acpi", "name": name, "blocks": sorted(ids)})
    present = {b["id"] for b in blocks}
    if manifest and not by_device:
        # an oracle capture: the DIMMs QEMU plugged (its sysfs copy has no
        # firmware_node links)
        for i, d in enumerate(manifest.get("dimms", [])):
            ids = [x for x in range(int(d["addr"]) // block_size,
                                    (int(d["addr"]) + int(d["size"])) // block_size)
                   if x in present]
            if ids:
                groups.append({"id": i, "driver": "acpi", "name": str(d["id"]),
                               "blocks": ids})
    boot_ranges: list[list[int]] = []
    taken = {x for g in groups for x in g["blocks"]}
    if resources is not None:
        for s, e, name, _ in resources:
            spfn, epfn = s >> ps, (e + 1) >> ps
            ids = [x for x in range(spfn // ppb, -(-epfn // ppb)) if x in present]
            if name in DRIVER_RESOURCES:
                if ids and not set(ids) & taken:
                    groups.append({"id": max([g["id"] for g in groups], default=-1) + 1,
                                   "driver": DRIVER_RESOURCES[name],
                                   "name": f"{name} {s:#x}-{e:#x}", "blocks": ids})
                    taken |= set(ids)
            elif not set(ids) & taken:
                boot_ranges.append([spfn, epfn])
    else:
        for b in blocks:
            if b["id"] not in taken:
                s = b["id"] * ppb
                if boot_ranges and boot_ranges[-1][1] == s:
                    boot_ranges[-1][1] = s + ppb
                else:
                    boot_ranges.append([s, s + ppb])
        notes.append("/proc/iomem addresses unreadable: boot memory taken as whole memory "
                     "blocks")
    for g in groups:
        for blk in g["blocks"]:
            block_group[blk] = g["id"]
    hot_ids = set(block_group)

    # memmap on memory of each device: what the driver would have asked for
    # (mhp_supports_memmap_on_memory of the device's size), checked against
    # kpageflags below where its online blocks show the memmap
    for g in groups:
        g["node"] = next(b["node"] for b in blocks if b["id"] == g["blocks"][0])
        g["start_pfn"] = min(g["blocks"]) * ppb
        g["nr_pages"] = (max(g["blocks"]) + 1 - min(g["blocks"])) * ppb

    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "kernel": {"release": release, "era": str(era)},
        "arch": arch_name, "block_size": block_size, "settings": settings,
        "nodes": {"possible": nr_nodes,
                  "online": sorted({z["node"] for z in zoneinfo})},
        "boot_ranges": boot_ranges,
        "zones": [z for z in zoneinfo],
        "free_blocks": free_by_type or buddy,
        "buddyinfo": buddy,
        "pageblocks": pageblocks,
        "blocks": {"ids": [b["id"] for b in blocks],
                   "state": [b["state"] for b in blocks],
                   "node": [b["node"] for b in blocks],
                   "zone": [b["zone"] for b in blocks],
                   "hot": [b["id"] in hot_ids for b in blocks],
                   "group": [block_group.get(b["id"], -1) for b in blocks]},
        "groups": [{k: g[k] for k in ("id", "driver", "name", "node", "start_pfn",
                                       "nr_pages")} for g in groups],
        "pages": None,
        "source": {"root": str(root), "notes": notes},
    }
    offset = int(manifest["range_start_pfn"]) if manifest and "range_start_pfn" in manifest \
        else 0
    # an oracle capture step holds kpageflags of [range_start_pfn, range_end_pfn)
    rel = "kpageflags" if manifest and r.path("kpageflags").is_file() else "proc/kpageflags"
    doc["pages"] = _read_kpageflags(r, offset if rel == "kpageflags" else 0, rel)
    if free_by_type == [] and pti is None:
        notes.append("free blocks per migratetype unknown (pagetypeinfo unreadable): "
                     "from buddyinfo, all on the Movable lists")
    doc["source"]["read"] = sorted(set(r.read))
    doc["source"]["unreadable"] = dict(sorted(r.unreadable.items()))
    return doc


def _read_kpageflags(r: Reader, offset: int, rel: str = "proc/kpageflags"
                     ) -> dict[str, Any] | None:
    """Page state from /proc/kpageflags as runs of categories (vectorised:
    the file is run-length encoded on its raw values first)."""
    path = r.path(rel)
    try:
        fh = open(path, "rb", buffering=0)
    except OSError as err:
        r.unreadable[rel] = err.strerror or type(err).__name__
        return None
    starts_all, cats_all = [], []
    pos = 0
    buf = np.empty(KPF_CHUNK, dtype="<u8")
    ne = np.empty(KPF_CHUNK, dtype=bool)
    view = memoryview(buf.data).cast("B")
    with fh:
        while True:
            got = 0
            while got < len(view):   # fill the chunk (a read may return less)
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
            k = got // 8
            if not k:
                break
            v = buf[:k]
            np.not_equal(v[1:], v[:-1], out=ne[:k - 1])
            st = np.flatnonzero(ne[:k - 1]) + 1
            st = np.concatenate((np.zeros(1, dtype=np.int64), st))
            starts_all.append(st + pos)
            cats_all.append(_classify(v[st]))
            pos += k
            if got < len(view):
                break
    r.read.append(rel)
    if not pos:
        return {"start_pfn": offset, "end_pfn": offset, **{k: [] for k in PAGE_CATS}}
    starts = np.concatenate(starts_all)
    cats = np.concatenate(cats_all)
    keep = np.concatenate(([True], cats[1:] != cats[:-1]))
    starts, cats = starts[keep], cats[keep]
    ends = np.concatenate((starts[1:], [pos]))
    out: dict[str, Any] = {"start_pfn": offset, "end_pfn": offset + pos}
    for name, c in PAGE_CATS.items():
        sel = cats == c
        out[name] = np.column_stack((starts[sel] + offset, ends[sel] + offset)).ravel().tolist()
    return out


def _classify(v: np.ndarray) -> np.ndarray:
    cat = np.full(len(v), CAT_UNMOVABLE, dtype=np.int8)
    cat[v == 0] = CAT_NOMAP
    cat[(v & KPF_RESERVED) != 0] = CAT_RESERVED
    cat[(v & KPF_OWNER_PRIVATE) != 0] = CAT_VMEMMAP
    cat[(v & KPF_MOVABLE) != 0] = CAT_MOVABLE
    cat[(v & KPF_BUDDY) != 0] = CAT_FREE
    cat[(v & KPF_NOPAGE) != 0] = CAT_NOPAGE
    return cat


# ---------------------------------------------------------------- files

def save_snapshot(doc: dict[str, Any], out: str | Path) -> None:
    """Write a snapshot through a temporary file renamed into place."""
    write_file(out, json.dumps(doc, separators=(",", ":")) + "\n", force=True)


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read and check a snapshot file."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a hotmem snapshot (not text)") from None
    try:
        doc = json.loads(text)
    except ValueError:
        raise ConfigError(f"{path}: not a hotmem snapshot (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a hotmem snapshot (no \"format\": \"{FORMAT}\")")
    if doc.get("version") != VERSION:
        raise ConfigError(f"{path}: snapshot version {doc.get('version')!r}; this hotmem "
                          f"reads version {VERSION}")
    for key in ("kernel", "arch", "block_size", "settings", "nodes", "boot_ranges", "zones",
                "free_blocks", "blocks", "groups"):
        if key not in doc:
            raise ConfigError(f"{path}: snapshot lacks {key!r}")
    return doc


# ---------------------------------------------------------------- building

def _runs(flat: list[int]) -> list[tuple[int, int]]:
    return list(zip(flat[0::2], flat[1::2], strict=True))


def build_machine(doc: dict[str, Any], source: str = "<snapshot>") -> Machine:
    """A mainline-design Machine in the state the snapshot describes.

    Pages the snapshot has kpageflags for are rebuilt exactly (free runs are
    freed into the buddy, which merges them as the kernel's free lists hold
    them).  Elsewhere the free blocks of each zone are placed from the free
    block counts, lowest pfns first, each with an allocated buddy so it cannot
    merge; the other pages of boot memory are taken as unmovable kernel pages,
    those of hot-added memory as movable.  Pageblocks are Movable, Unmovable
    where they hold memmap or unmovable (slab) pages."""
    try:
        return _build(doc)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ConfigError(f"{source}: malformed snapshot ({type(err).__name__}: "
                          f"{str(err)[:80]})") from None


def _build(doc: dict[str, Any]) -> Machine:
    a = get_arch(doc["arch"])
    kernel = Kernel.parse(doc["kernel"]["era"])
    st = doc["settings"]
    block_size = int(doc["block_size"])
    ps = a.page_shift
    ppb = block_size >> ps
    boot = [(int(s), int(e)) for s, e in doc["boot_ranges"]]
    boot_pages = sum(e - s for s, e in boot)
    top = max([e for _, e in boot] + [(i + 1) * ppb for i in doc["blocks"]["ids"]] + [1])
    max_memory = -(-(top << ps) // block_size) * block_size
    limit = 1 << min(a.max_physmem_bits, 47)
    max_memory = limit if max_memory <= limit else max_memory
    m = Machine.__new__(Machine)
    MachineState.__init__(
        m, a, kernel, designs.get("mainline"), max(boot_pages << ps, 64 << 20),
        st["memmap_on_memory"], st["online_policy"], int(st["auto_movable_ratio"]),
        st["auto_online_blocks"], block_size, int(doc["nodes"]["possible"]), False, True,
        max_memory, bool(st["thp"]), "fast", bool(st["auto_movable_numa_aware"]))
    m.boot_ranges = boot
    m.boot_memory = boot_pages << ps
    m.boot_reserved = []
    p = m.pages
    zone_ids = {(z.nid, z.name): z.zid for z in m.zones if z.configured}

    def zid_of(nid: int, name: str) -> int:
        if (nid, name) not in zone_ids:
            raise ConfigError(f"snapshot: zone {name} of node {nid} is not a zone of {a.name}")
        return zone_ids[nid, name]

    # memory blocks, sections and groups
    ids = np.asarray(doc["blocks"]["ids"], dtype=np.int64)
    if len(ids) and int(ids.max()) >= m.nr_blocks:
        raise ConfigError(f"snapshot: memory block {int(ids.max())} lies beyond {a.name}'s "
                          "physical address space")
    states = doc["blocks"]["state"]
    online = np.array([s == "online" for s in states], dtype=bool)
    m.blk_state[ids] = np.where(online, MEM_ONLINE, MEM_OFFLINE)
    m.blk_nid[ids] = np.asarray(doc["blocks"]["node"], dtype=np.int16)
    hot = np.asarray(doc["blocks"]["hot"], dtype=bool)
    m.blk_early[ids] = ~hot
    m.blk_group[ids] = np.asarray(doc["blocks"]["group"], dtype=np.int32)
    split = zone_splitter(a)
    for blk, nid, zname in zip(ids.tolist(), doc["blocks"]["node"], doc["blocks"]["zone"],
                               strict=True):
        m.blk_zone[blk] = zid_of(nid, zname) if zname else -1
    sections_per_block = m.sections_per_block
    for blk, nid, on, h in zip(ids.tolist(), doc["blocks"]["node"], online.tolist(),
                               hot.tolist(), strict=True):
        secs = slice(blk * sections_per_block, (blk + 1) * sections_per_block)
        m.sec_flags[secs] = (SECTION_MARKED_PRESENT | SECTION_HAS_MEM_MAP
                             | (SECTION_IS_ONLINE if on else 0) | (0 if h else SECTION_IS_EARLY))
        m.sec_nid[secs] = nid
    for g in doc["groups"]:
        blocks = ids[np.asarray(doc["blocks"]["group"]) == g["id"]]
        size = len(blocks) * block_size if len(blocks) else int(g["nr_pages"]) << ps
        supported, _ = m.design.verdict(m, size)
        m.groups[int(g["id"])] = MemoryGroup(
            int(g["id"]), int(g["node"]), int(g["start_pfn"]), int(g["nr_pages"]),
            int(g["nr_pages"]), memmap_on_memory=supported, driver=str(g["driver"]))
        m.next_gid = max(m.next_gid, int(g["id"]) + 1)
        if supported:
            for blk in blocks.tolist():
                alt = VmemAltmap(base_pfn=blk * ppb, end_pfn=(blk + 1) * ppb - 1,
                                 free=vmemmap_pages_per_block(a, block_size,
                                                              m.memmap_on_memory))
                if kernel.explicit_request_fails:
                    alt.free = ppb
                populate_altmap(m, alt, blk * ppb)
                if kernel.explicit_request_fails:
                    alt.free = alt.alloc + alt.align
                m.blk_altmap[blk] = True
                m.alt_free[blk], m.alt_alloc[blk], m.alt_align[blk] = \
                    alt.free, alt.alloc, alt.align

    # zones
    for zd in doc["zones"]:
        z = m.zones[zid_of(int(zd["node"]), zd["zone"])]
        z.zone_start_pfn = int(zd["start_pfn"] or 0)
        z.spanned_pages = int(zd["spanned"] or 0)
        z.present_pages = int(zd["present"] or 0)
        z.managed_pages = int(zd["managed"] or 0)
        z.cma_pages = int(zd["cma"] or 0)
        z.wmark_min, z.wmark_low, z.wmark_high = int(zd["min"]), int(zd["low"]), int(zd["high"])
        z.wmark_promo = int(zd["promo"]) if zd.get("promo") is not None \
            else z.wmark_high + (z.wmark_high - z.wmark_low)
        hot_online = int(np.count_nonzero(hot & online & (m.blk_zone[ids] == z.zid)))
        z.present_early_pages = max(z.present_pages - hot_online * ppb, 0)
        z.boot_ranges = [(max(s, zs), min(e, ze)) for s, e in boot
                         for zs, ze, zt in split(s, e) if zt == z.ztype and z.nid == 0]
    for blk in ids[hot & online].tolist():
        g = m.group_of_block(blk)
        if g is not None:
            if m.zones[int(m.blk_zone[blk])].ztype == ZONE_MOVABLE:
                g.present_movable_pages += ppb
            else:
                g.present_kernel_pages += ppb

    # pageblocks of online memory: the block's zone (boot blocks across zone
    # limits: split at them), Movable
    for blk in ids[online].tolist():
        s, e = blk * ppb, (blk + 1) * ppb
        zid = int(m.blk_zone[blk])
        nid = int(m.blk_nid[blk])
        if zid >= 0:
            p.set_pageblocks(s, e, MIGRATE_MOVABLE, zid)
        else:
            for zs, ze, zt in split(s, e):
                p.set_pageblocks(zs, ze, MIGRATE_MOVABLE, m.zone(nid, zt).zid)

    pages = doc.get("pages")
    lo, hi = (int(pages["start_pfn"]), min(int(pages["end_pfn"]), m.nr_pfns)) if pages \
        else (0, 0)
    claimed: list[tuple[int, int]] = []
    if pages:
        for s, e in _runs(pages["reserved"]):
            p.set(P_RESERVED, s, e)
        for name in ("unmovable", "nomap"):
            for s, e in _runs(pages[name]):
                # an unmovable allocation (slab, a memmap from the buddy) claims
                # its Movable pageblock (try_to_claim_block)
                p.set(P_UNMOVABLE, s, e)
                claimed.append((s, e))
        # vmemmap pages: the memmap at the start of online blocks with an altmap
        vm_runs = _runs(pages["vmemmap"])
        for s, e in vm_runs:
            blk = s // ppb
            nr = m.nr_vmemmap_pages(blk)
            if m.blk_altmap[blk] and s == blk * ppb and e - s == nr:
                p.set(P_VMEMMAP, s, e)
            else:
                p.set(P_UNMOVABLE, s, e)
        m.max_pfn_seen = max(hi, 0)
        _memmap_from_buddy(m, _runs(pages["nomap"]))
    # memmap of online blocks with an altmap outside the kpageflags range
    for blk in ids[online & hot].tolist():
        nr = m.nr_vmemmap_pages(blk)
        s = blk * ppb
        if nr and not (lo <= s and s + nr <= hi):
            p.set(P_VMEMMAP, s, s + nr)
    for blk in ids[online & hot].tolist():
        nr = m.nr_vmemmap_pages(blk)
        if nr:
            s = blk * ppb
            p.set_pageblocks(s, s + nr, MIGRATE_UNMOVABLE, int(m.blk_zone[blk]))
    pbo = a.pageblock_order
    # without pagetypeinfo's pageblock counts: an unmovable page's pageblock
    # was claimed by its allocation; with them, _match_pageblocks decides
    for s, e in ([] if doc.get("pageblocks") else claimed):
        for pb in range(s >> pbo, ((e - 1) >> pbo) + 1):
            mt, _, _ = p.pageblock(pb << pbo)
            if mt == MIGRATE_MOVABLE:
                p.set_migratetype(pb << pbo, (pb + 1) << pbo, MIGRATE_UNMOVABLE)
    if pages:
        for s, e in _runs(pages["free"]):
            p.free_range(s, e)
    _holes(m, ids[online], lo, hi)
    _synthesize(m, doc, lo, hi)
    _match_pageblocks(m, doc)
    m.max_pfn_seen = max(m.max_pfn_seen, m.max_pfn())
    if st.get("min_free_kbytes") is not None:
        m.min_free_kbytes = int(st["min_free_kbytes"])
    else:
        from .page_alloc import calculate_min_free_kbytes
        m.min_free_kbytes = calculate_min_free_kbytes(m.zones, a.page_size)
    return m


def _memmap_from_buddy(m: MachineState, nomap: list[tuple[int, int]]) -> None:
    """Hot-added blocks without an altmap had their memmap taken from the
    buddy: whole mapping units of flagless pages, assigned to the blocks in
    order (which unit belongs to which block is not visible)."""
    need = [int(b) for b in m.hot_blocks() if not m.blk_altmap[b]]
    if not need:
        return
    units, unit = memmap_units(m)
    cands: list[int] = []
    for s, e in nomap:
        first = -(-s // unit) * unit
        cands.extend(range(first, e - unit + 1, unit))
    for blk in need:
        take, cands = cands[:units], cands[units:]
        if len(take) < units:
            break
        m.memmap_from_buddy[blk] = np.concatenate(
            [np.arange(c, c + unit, dtype=np.int64) for c in take])


def _synthesize(m: MachineState, doc: dict[str, Any], lo: int, hi: int) -> None:
    """Pages outside [lo, hi) that kpageflags did not cover: the zone's free
    blocks not yet placed go to the lowest free-able aligned positions (each
    with an allocated buddy), the rest is allocated."""
    a = m.arch
    p = m.pages
    ppb = m.pages_per_block
    orders = a.max_page_order + 1
    typed = _wanted_free(m, doc)
    if typed is not None:
        want = typed
    else:   # buddyinfo only: everything on the Movable lists
        want = np.zeros((len(m.zones), MIGRATE_TYPES, orders), dtype=np.int64)
        for fb in doc["free_blocks"]:
            zid = next((z.zid for z in m.zones if z.nid == fb["node"]
                        and z.name == fb["zone"] and z.configured), None)
            if zid is not None:
                want[zid, MIGRATE_MOVABLE, :len(fb["counts"])] += \
                    np.asarray(fb["counts"][:orders])
    ids = np.asarray(doc["blocks"]["ids"], dtype=np.int64)
    on = np.asarray([s == "online" for s in doc["blocks"]["state"]], dtype=bool)
    for z in m.zones:
        if not z.configured or not z.present_pages:
            continue
        have = p.nr_free[z.zid].copy()
        missing = np.maximum(want[z.zid] - have, 0)
        if not missing.any():
            continue
        # candidate pages: online pages of this zone outside [lo, hi)
        ranges = []
        for blk in ids[on].tolist():
            s, e = blk * ppb, (blk + 1) * ppb
            s += m.nr_vmemmap_pages(blk)
            if m.blk_early[blk]:
                segs = [(max(s, bs), min(e, be)) for bs, be in m.boot_ranges
                        if bs < e and be > s]
            else:
                segs = [(s, e)]
            for cs, ce in segs:
                for x, y in ((cs, min(ce, lo)), (max(cs, hi), ce)):
                    if x < y:
                        ranges.append((x, y))
        if not ranges:
            continue
        base = min(s for s, _ in ranges) >> a.max_page_order << a.max_page_order
        end = max(e for _, e in ranges)
        avail = np.zeros(end - base + (1 << a.max_page_order), dtype=bool)
        for s, e in ranges:
            _, _, zb = p.pageblock(s)
            avail[s - base:e - base] = True
        zb_bytes = p.pageblock_bytes(base >> a.pageblock_order << a.pageblock_order,
                                     -(-(end) >> a.pageblock_order) << a.pageblock_order)[1]
        pbo = a.pageblock_order
        pbz = np.repeat(zb_bytes == z.zid + 1, 1 << pbo)
        off = base - (base >> pbo << pbo)
        avail &= np.concatenate((pbz[off:], np.zeros(max(0, len(avail) - len(pbz) + off),
                                                     dtype=bool)))[:len(avail)]
        used = np.zeros_like(avail)
        npb = -(-len(avail) // (1 << pbo))
        pb_type = np.full(npb, -1, dtype=np.int8)   # list a pageblock was given to
        base_pb = base >> pbo
        for mt in (MIGRATE_UNMOVABLE, 2, 3, MIGRATE_MOVABLE):   # Reclaimable, HighAtomic
            for o in range(orders - 1, -1, -1):
                n = int(missing[mt, o])
                if not n:
                    continue
                size = 1 << o
                L = len(avail) // size * size
                free_slot = np.flatnonzero((avail[:L] & ~used[:L]).reshape(-1, size).all(axis=1))
                chosen: set[int] = set()
                for k in free_slot.tolist():
                    if n <= 0:
                        break
                    if o < orders - 1 and (k ^ 1) in chosen:
                        continue   # two free buddies of one order would merge
                    pb0 = (k * size) >> pbo
                    pb1 = max(pb0 + 1, ((k + 1) * size) >> pbo)
                    kinds = pb_type[pb0:pb1]
                    if not ((kinds == mt) | (kinds == -1)).all():
                        continue
                    if mt != MIGRATE_MOVABLE and (kinds == -1).any() and \
                            used[pb0 << pbo:pb1 << pbo].any():
                        continue   # a pageblock that already holds Movable blocks
                    chosen.add(k)
                    used[k * size:(k + 1) * size] = True
                    pb_type[pb0:pb1] = mt
                    s = base + k * size
                    if mt != MIGRATE_MOVABLE:
                        p.set_migratetype((base_pb + pb0) << pbo, (base_pb + pb1) << pbo, mt)
                    p.free_range(s, s + size)
                    n -= 1
        # the rest of the range is allocated: unmovable in boot memory, movable
        # in hot-added memory (no plane: a page no plane marks is movable)
        for s, e in ranges:
            blk = s // ppb
            if m.blk_early[blk]:
                seg = avail[s - base:e - base] & ~used[s - base:e - base]
                idx = np.flatnonzero(seg)
                if len(idx):
                    edges = np.flatnonzero(np.diff(idx) != 1)
                    for a0, a1 in zip(np.concatenate(([0], edges + 1)),
                                      np.concatenate((edges, [len(idx) - 1])), strict=True):
                        p.set(P_UNMOVABLE, s + int(idx[a0]), s + int(idx[a1]) + 1)


def _wanted_free(m: MachineState, doc: dict[str, Any]) -> np.ndarray | None:
    """nr_free[zid, migratetype, order] as the snapshot gives it (None if the
    snapshot has buddyinfo only)."""
    orders = m.arch.max_page_order + 1
    want = np.zeros((len(m.zones), MIGRATE_TYPES, orders), dtype=np.int64)
    for fb in doc["free_blocks"]:
        if fb["migratetype"] is None:
            return None
        z = next((z for z in m.zones if z.nid == fb["node"] and z.name == fb["zone"]
                  and z.configured), None)
        if z is not None and fb["migratetype"] in MIGRATETYPE_IDS:
            want[z.zid, MIGRATETYPE_IDS[fb["migratetype"]], :len(fb["counts"])] = \
                np.asarray(fb["counts"][:orders])
    # pagetypeinfo stops counting a list at 100000 (">100000"); buddyinfo has
    # the whole count of every order: a single capped list gets the rest
    for bi in doc.get("buddyinfo", []):
        z = next((z for z in m.zones if z.nid == bi["node"] and z.name == bi["zone"]
                  and z.configured), None)
        if z is None:
            continue
        for o, total in enumerate(bi["counts"][:orders]):
            capped = np.flatnonzero(want[z.zid, :, o] >= PAGETYPEINFO_CAP)
            if len(capped) == 1:
                want[z.zid, capped[0], o] = total - (want[z.zid, :, o].sum()
                                                     - want[z.zid, capped[0], o])
    return want


def _match_pageblocks(m: MachineState, doc: dict[str, Any]) -> None:
    """No kernel file gives a pageblock's migratetype, /proc/pagetypeinfo only
    counts them and the free blocks on each type's lists.  Every pageblock
    starts Movable (memmap on memory: Unmovable, as the kernel marks it); per
    zone, pageblocks whose free blocks make up what the Unmovable,
    Reclaimable and HighAtomic lists hold beyond that are moved to them
    (those holding the most unmovable pages first, then the lowest pfn), and
    the counts are made up with pageblocks that hold no free page, most
    unmovable pages first."""
    want = _wanted_free(m, doc)
    counts_read = {(pbd["node"], pbd["zone"]): pbd for pbd in doc.get("pageblocks", [])}
    if want is None or not counts_read:
        return
    p, pbo = m.pages, m.arch.pageblock_order
    for z in m.zones:
        if not z.configured or not z.present_pages or z.is_empty():
            continue
        read = counts_read.get((z.nid, z.name), {})
        s0 = z.zone_start_pfn >> pbo << pbo
        e0 = -(-z.zone_end_pfn >> pbo) << pbo
        types = [(t, MIGRATETYPE_IDS[t]) for t in ("Unmovable", "Reclaimable", "HighAtomic")]
        needs = {mt: want[z.zid, mt] - p.nr_free[z.zid, mt] for _, mt in types}
        built = _pageblock_counts(m, z.zid, s0, e0)
        if not any((n > 0).any() for n in needs.values()) and all(
                read.get(t, 0) == built.get(mt, 0) for t, mt in types):
            continue
        # unmovable pages per pageblock of the span
        words = p.words(P_UNMOVABLE, s0, e0)
        per_pb = max((1 << pbo) // 64, 1)
        pops = _POPCOUNT8[words.view(np.uint8)].reshape(-1, 8 * per_pb).sum(axis=1) \
            if (1 << pbo) >= 64 else np.zeros((e0 - s0) >> pbo, dtype=np.int64)
        heads, orders = p.free_blocks(s0, e0)
        cands: dict[tuple[int, int], np.ndarray] = {}
        for h, o in zip(heads.tolist(), orders.tolist(), strict=True):
            key = (h >> pbo, (h >> pbo) + 1) if o <= pbo else (h >> pbo, (h + (1 << o)) >> pbo)
            cands.setdefault(key, np.zeros(want.shape[2], dtype=np.int64))[o] += 1

        def movable(key: tuple[int, int], zid0: int = z.zid) -> bool:
            return all(mt == MIGRATE_MOVABLE and not iso and zid == zid0
                       for mt, iso, zid in (p.pageblock(pb << pbo) for pb in range(*key)))

        def rank(key: tuple[int, int], pops: np.ndarray = pops,
                 first: int = s0 >> pbo) -> tuple[int, int]:
            return (-int(pops[key[0] - first:key[1] - first].sum()), key[0])

        for _, mt in types:
            need = needs[mt]
            for o in range(len(need) - 1, -1, -1):
                if need[o] <= 0:
                    continue
                for key in sorted(cands, key=rank):
                    hist = cands[key]
                    if need[o] <= 0:
                        break
                    if hist[o] and (hist <= np.maximum(need, 0)).all() and movable(key):
                        p.set_migratetype(key[0] << pbo, key[1] << pbo, mt)
                        need -= hist
                        del cands[key]
        # pageblocks without a free page make up the counts
        has_free = np.zeros(len(pops), dtype=bool)
        for h, o in zip(heads.tolist(), orders.tolist(), strict=True):
            a0 = (h >> pbo) - (s0 >> pbo)
            has_free[a0:max(a0 + 1, ((h + (1 << o)) >> pbo) - (s0 >> pbo))] = True
        order = np.lexsort((np.arange(len(pops)), -pops))
        built = _pageblock_counts(m, z.zid, s0, e0)
        for t, mt in types:
            short = read.get(t, 0) - built.get(mt, 0)
            for i in order.tolist():
                if short <= 0:
                    break
                if has_free[i] or not pops[i]:
                    continue
                pb = (s0 >> pbo) + i
                if movable((pb, pb + 1)) and m.section_online(pb << pbo):
                    p.set_migratetype(pb << pbo, (pb + 1) << pbo, mt)
                    short -= 1


def _pageblock_counts(m: MachineState, zid: int, s: int, e: int) -> dict[int, int]:
    """Pageblocks of zone zid in [s, e) by free list, in online sections
    (what /proc/pagetypeinfo counts)."""
    if s >= e:
        return {}
    pbo = m.arch.pageblock_order
    s, e = s >> pbo << pbo, -(-e >> pbo) << pbo
    mt, zn = m.pages.pageblock_bytes(s, e)
    pfns = s + (np.arange(len(mt), dtype=np.int64) << pbo)
    sec = pfns >> (m.arch.section_size_bits - m.arch.page_shift)
    ok = (zn == zid + 1) & ((m.sec_flags[sec] & SECTION_IS_ONLINE) != 0)
    kinds, counts = np.unique(pageblock_lists(mt)[ok], return_counts=True)
    return {int(k): int(c) for k, c in zip(kinds, counts, strict=True)}


def differences(m: MachineState, doc: dict[str, Any]) -> list[str]:
    """Where the machine built from ``doc`` differs from what the snapshot
    read: free blocks per zone (and migratetype) and order, pageblocks per
    migratetype.  Empty when it is the machine the files describe."""
    out = []
    want = _wanted_free(m, doc)
    p = m.pages
    for fb in doc["free_blocks"]:
        z = next((z for z in m.zones if z.nid == fb["node"] and z.name == fb["zone"]
                  and z.configured), None)
        if z is None:
            continue
        have = (p.nr_free[z.zid].sum(axis=0) if want is None
                else p.nr_free[z.zid, MIGRATETYPE_IDS.get(fb["migratetype"], 0)])
        if fb["migratetype"] is not None:
            have = np.minimum(have, PAGETYPEINFO_CAP)   # as pagetypeinfo prints it
        if list(have[:len(fb["counts"])]) != fb["counts"]:
            out.append(f"node {z.nid} {z.name} {fb['migratetype'] or 'all'} free blocks "
                       f"per order: read {fb['counts']}, built {have.tolist()}")
    for pbd in doc.get("pageblocks", []):
        z = next((z for z in m.zones if z.nid == pbd["node"] and z.name == pbd["zone"]
                  and z.configured), None)
        if z is None:
            continue
        counts = _pageblock_counts(m, z.zid, z.zone_start_pfn, z.zone_end_pfn)
        for name, mt in MIGRATETYPE_IDS.items():
            if name in pbd and pbd[name] != counts.get(mt, 0):
                out.append(f"node {z.nid} {z.name} {name} pageblocks: read {pbd[name]}, "
                           f"built {counts.get(mt, 0)}")
    return out


def _holes(m: MachineState, blocks: np.ndarray, lo: int, hi: int) -> None:
    """Pages of online boot blocks outside the boot ranges are PG_reserved
    (init_unavailable_range), where kpageflags did not say."""
    ppb = m.pages_per_block
    for blk in blocks.tolist():
        if not m.blk_early[blk]:
            continue
        s, e = blk * ppb, (blk + 1) * ppb
        cur = s
        for bs, be in sorted(m.boot_ranges) + [(e, e)]:
            if be <= s or bs >= e and bs != e:
                continue
            for x, y in ((cur, min(bs, e)),):
                for u, w in ((x, min(y, lo)), (max(x, hi), y)):
                    if u < w:
                        m.pages.set(P_RESERVED, u, w)
            cur = max(cur, be)


def machine_from_file(path: str | Path) -> Machine:
    return build_machine(load_snapshot(path), str(path))


__all__ = ["FORMAT", "VERSION", "read_snapshot", "save_snapshot", "load_snapshot",
           "build_machine", "machine_from_file"]
