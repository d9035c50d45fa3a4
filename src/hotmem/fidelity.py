"""Fidelity against real kernels: replay a kernel-oracle capture in hotmem and
compare, step by step, what the kernel showed with what hotmem shows.

    hotmem fidelity [CAPTURE ...] [--json]        (python3 -m hotmem.fidelity)

A capture (``tests/data/oracle/<name>.tar.xz``, made by
tools/kernel-oracle/capture.py) holds a manifest and, per step, the files the
guest read: kpageflags of the hot-added range, /proc/{buddyinfo,zoneinfo,
pagetypeinfo}, /sys/devices/system/memory.  ``<name>.toml`` next to it is the
same scenario in hotmem's format; a step's ``capture`` key names the capture
step directory it corresponds to (when several steps name the same directory,
hotmem is compared after the last of them).

What is compared, per capture step:

* ``outcome``: whether the online / offline / hot-add / hot-remove succeeded and
  its errno (manifest ``steps[].result``);
* ``kpageflags``: every pfn of [range_start_pfn, range_end_pfn), value for value.
  The kernel's file ends at round_up(max_pfn, section); hotmem's view ends at
  its highest present section.  max_pfn never drops in the kernel, so after a
  hot-remove the kernel still shows the range: pfns beyond hotmem's end must
  read as a pfn without an online memmap there (NOPAGE; 0x0 from 6.17);
* ``buddyinfo``, ``zoneinfo`` (pages free, spanned, present, managed, start_pfn,
  and nr_free_pages_blocks from 6.15)
  and ``pagetypeinfo`` (free blocks per migratetype and order, pageblocks per
  migratetype) of the zones that hold only hot-added memory: Normal and Movable
  (the guests have 2 GiB of boot RAM, all below 4 GiB).  The boot zones (DMA,
  DMA32) come from a real firmware and boot, which hotmem does not replay: only
  the set of zones each file lists is compared for them;
* ``state`` and ``valid_zones`` of the hot-added blocks, byte for byte, and
  ``block_size_bytes``.

Kernel allocations.  A scenario with an ``alloc`` step stands in for the
kernel's own (slab, page table, seq_file) allocations that land in memory
onlined to a kernel zone; their exact pfns are not deterministic.  In such a
capture the MAX_ORDER-aligned chunks of the hot-added range that hold a page
the kernel allocated, or a page of hotmem's stand-in allocation, are skipped:
kpageflags is compared exactly outside them, and the rows of the zone holding
them (buddyinfo, pagetypeinfo, zoneinfo ``pages free``) are compared as "hotmem's
free blocks outside the skipped chunks, plus something the skipped chunks can
hold": the kernel's count minus hotmem's count outside must be >= 0 for every
order and migratetype, and its pages must fit in the skipped chunks
(pageblock counts: the remainder must be exactly the skipped pageblocks).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tarfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple, NotRequired, TypedDict

import numpy as np
import numpy.typing as npt

from .constants import MIGRATE_ISOLATE, SECTION_IS_ONLINE, IntArray
from .machine import Machine
from .scenario import StepResult, loads_scenario, run_scenario
from .views import sysfs as sysfs_view
from .views.kpageflags import KPF, decode, kpageflags, unpopulated_value
from .views.procfs import MIGRATE_CMA_COLUMN, buddyinfo, migratetype_columns, pagetypeinfo, zoneinfo

FILES = ("outcome", "kpageflags", "buddyinfo", "zoneinfo", "pagetypeinfo",
         "state", "valid_zones", "block_size_bytes")
HOT_ZONES = ("Normal", "Movable")
ZONEINFO_FIELDS = ("pages free", "spanned", "present", "managed", "start_pfn",
                   "nr_free_pages_blocks")
NOPAGE = 1 << KPF["NOPAGE"]
BUDDY = 1 << KPF["BUDDY"]
# self-hosted memmap pages: PG_reserved + PG_owner_priv_1 (6.1), PG_owner_priv_1 (6.12)
VMEMMAP_VALUES = (1 << KPF["RESERVED"] | 1 << KPF["OWNER_PRIVATE"], 1 << KPF["OWNER_PRIVATE"])

BoolArray = npt.NDArray[np.bool_]
#: (ok, the first difference, what was skipped) of one file of one step
Outcome = tuple[bool, str, str]



def default_dir() -> Path:
    """Where the captures are: $HOTMEM_ORACLE_DIR, else tests/data/oracle of the
    source tree hotmem runs from (an editable install), else of the current
    directory.  A wheel does not ship them: they live in the source tree."""
    env = os.environ.get("HOTMEM_ORACLE_DIR")
    if env:
        return Path(env)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        d = base / "tests" / "data" / "oracle"
        if d.is_dir():
            return d
    return Path.cwd() / "tests" / "data" / "oracle"


@dataclass
class Record:
    """One comparison: a file of a capture step, hotmem against the kernel."""

    capture: str
    step: str            # capture step directory, e.g. "09-offline-memory32"
    file: str            # one of FILES
    ok: bool
    detail: str = ""     # the first difference (empty when ok)
    skipped: str = ""    # what was left out of the comparison, and why
    note: str = ""       # loose comparisons (boot zones): differences that do not fail

    def line(self) -> str:
        head = f"{self.capture} {self.step} {self.file}: "
        return head + ("match" if self.ok else self.detail) + \
            (f"  [skipped: {self.skipped}]" if self.skipped else "") + \
            (f"  [note: {self.note}]" if self.note else "")


# ---------------------------------------------------------------- capture files

class ManifestStep(TypedDict):
    """A step of a capture's manifest.json, the keys hotmem reads (the
    capture tool writes more: arg, detail, elapsed_ns, device sizes)."""

    dir: str
    op: str
    result: str           # "ok" or the errno name
    block: NotRequired[int | None]
    # a virtio-mem host resize (op "host"): the device after the step, as QMP
    # query-memory-devices gives it, and what it reached ("size")
    plugged_size: NotRequired[int | None]
    device: NotRequired[dict[str, object] | None]


class Manifest(TypedDict):
    """A capture's manifest.json, the keys hotmem reads (the capture tool
    writes more: kernel package, QEMU command line, notes, ...)."""

    name: str
    era: str
    block_size_bytes: int
    range_start_pfn: int
    range_end_pfn: int
    steps: list[ManifestStep]


@dataclass
class Capture:
    name: str
    manifest: Manifest
    files: dict[str, bytes]
    toml: str
    source: str = ""
    # hotmem's zoneinfo of the machine as built (00-boot), set by check_capture
    hotmem_boot: dict[tuple[int, str], dict[str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> Capture:
        path = Path(path)
        name = path.name.removesuffix(".tar.xz")
        files: dict[str, bytes] = {}
        with tarfile.open(path) as t:
            for mem in t:
                fh = t.extractfile(mem) if mem.isfile() else None
                if fh is not None:
                    rel = mem.name.split("/", 1)[1] if "/" in mem.name else mem.name
                    files[rel] = fh.read()
        manifest: Manifest = json.loads(files.pop("manifest.json"))
        toml_path = path.with_name(name + ".toml")
        return cls(manifest["name"], manifest, files, toml_path.read_text(), str(toml_path))

    def step_file(self, step: str, rel: str) -> bytes | None:
        return self.files.get(f"steps/{step}/{rel}")

    @property
    def hot_zones(self) -> tuple[str, ...]:
        """The zones that hold only hot-added memory: those with no present
        page at 00-boot (Normal and Movable of the x86_64 and arm64 guests; on
        ppc64 Normal holds boot memory too, and only Movable is compared
        exactly)."""
        boot = parse_zoneinfo(self.text("00-boot", "proc/zoneinfo"))
        if not boot:
            return HOT_ZONES
        populated = {name for (_, name), f in boot.items() if f.get("present")}
        return tuple(z for z in HOT_ZONES if z not in populated)

    def text(self, step: str, rel: str) -> str:
        data = self.step_file(step, rel)
        return "" if data is None else data.decode()


# ---------------------------------------------------------------- parsers

_ROW = re.compile(r"^Node\s+(\d+), zone\s+(\S+)\s+(.*)$")
_TYPE_ROW = re.compile(r"^Node\s+(\d+), zone\s+(\S+), type\s+(\S+)\s+(.*)$")


def _nums(text: str) -> list[int]:
    # pagetypeinfo prints ">100000" for a list walk stopped at the cap
    return [int(x.lstrip(">")) for x in text.split()]


def parse_buddyinfo(text: str) -> dict[tuple[int, str], list[int]]:
    out: dict[tuple[int, str], list[int]] = {}
    for line in text.splitlines():
        mo = _ROW.match(line)
        if mo:
            out[(int(mo[1]), mo[2])] = _nums(mo[3])
    return out


class Pagetypeinfo(NamedTuple):
    free: dict[tuple[int, str, str], list[int]]    # (node, zone, type): counts per order
    blocks: dict[tuple[int, str], list[int]]        # (node, zone): pageblocks per type
    block_types: list[str] | None                   # the type of each column of ``blocks``


def parse_pagetypeinfo(text: str) -> Pagetypeinfo:
    """The free-page rows, the pageblock rows and the pageblock columns'
    migratetypes (None when the file has no "Number of blocks type" line)."""
    free: dict[tuple[int, str, str], list[int]] = {}
    blocks: dict[tuple[int, str], list[int]] = {}
    types: list[str] | None = None
    in_blocks = False
    for line in text.splitlines():
        if line.startswith("Number of blocks type"):
            in_blocks = True
            types = line[len("Number of blocks type"):].split()
            continue
        if not in_blocks:
            mo = _TYPE_ROW.match(line)
            if mo:
                free[(int(mo[1]), mo[2], mo[3])] = _nums(mo[4])
        else:
            mo = _ROW.match(line)
            if mo:
                blocks[(int(mo[1]), mo[2])] = _nums(mo[3])
    return Pagetypeinfo(free, blocks, types)


def parse_zoneinfo(text: str) -> dict[tuple[int, str], dict[str, int]]:
    out: dict[tuple[int, str], dict[str, int]] = {}
    cur = None
    for line in text.splitlines():
        mo = re.match(r"^Node (\d+), zone\s+(\S+)$", line)
        if mo:
            cur = out.setdefault((int(mo[1]), mo[2]), {})
            continue
        if cur is None:
            continue
        s = line.strip()
        for key in ZONEINFO_FIELDS:
            if s.startswith(key) and s[len(key):len(key) + 1] in (" ", ":"):
                val = s[len(key):].lstrip(" :")
                if val.isdigit() and key not in cur:
                    cur[key] = int(val)
    return out


_VALUE = re.compile(r"^(.*?)\s+(-?\d+|\(.*\))$")


def zoneinfo_keys(text: str) -> dict[tuple[int, str], list[str]]:
    """The keys of every /proc/zoneinfo zone section in order of first
    appearance: each line without its value ("pages free", "min", "protection:",
    "nr_free_pages", "per-node stats", "cpu:", "high_min:", "vm stats
    threshold:", ...).  Repeated per-cpu pageset lines count once."""
    out: dict[tuple[int, str], list[str]] = {}
    cur: list[str] | None = None
    for line in text.splitlines():
        mo = re.match(r"^Node (\d+), zone\s+(\S+)$", line)
        if mo:
            cur = out.setdefault((int(mo[1]), mo[2]), [])
            continue
        if cur is None or not line.strip():
            continue
        s = line.strip()
        mv = _VALUE.match(s)
        key = mv[1] if mv else s
        if key not in cur:
            cur.append(key)
    return out


def pagetypeinfo_columns(text: str) -> tuple[list[str], list[str]]:
    """(migratetypes of the free-page rows of the first zone, in order; the
    "Number of blocks type" columns)."""
    free, _, block_types = parse_pagetypeinfo(text)
    first = next(iter(free), None)
    types = [k[2] for k in free if first is not None and k[:2] == first[:2]]
    return types, list(block_types or [])


# ---------------------------------------------------------------- comparisons

def _kpf(v: int) -> str:
    names = decode(v)
    return f"{v:#x}" + (f" ({','.join(names)})" if names else "")


@dataclass
class Skip:
    """The chunks of the hot-added range left out because kernel allocations
    (non-deterministic) or hotmem's stand-in for them occupy pages there."""

    chunk_pages: int
    chunks: list[int] = field(default_factory=list)   # chunk start pfns

    def mask(self, start: int, n: int) -> BoolArray:
        m = np.zeros(n, dtype=bool)
        for c in self.chunks:
            lo, hi = max(c - start, 0), min(c + self.chunk_pages - start, n)
            if hi > lo:
                m[lo:hi] = True
        return m

    def contains(self, pfn: int) -> bool:
        return any(c <= pfn < c + self.chunk_pages for c in self.chunks)

    def describe(self) -> str:
        if not self.chunks:
            return ""
        rng = ", ".join(f"{c:#x}-{c + self.chunk_pages - 1:#x}" for c in self.chunks)
        return (f"pfns {rng} ({len(self.chunks)} chunk(s) of {self.chunk_pages} pages holding "
                "kernel allocations or hotmem's stand-in for them)")


def _held(values: npt.NDArray[np.uint64], online: BoolArray | None = None) -> BoolArray:
    """Pages neither free (buddy), absent, nor self-hosted memmap: allocated.
    ``online``: which pfns have an online memmap; from 6.17 the others read
    0x0, like an allocated page without flags, so the caller must say."""
    held: BoolArray = (values & BUDDY) == 0
    held &= (values & NOPAGE) == 0
    for v in VMEMMAP_VALUES:
        held &= values != v
    if online is not None:
        held &= online[:len(held)]
    return held


def held_chunks(start: int, values: npt.NDArray[np.uint64], chunk: int,
                online: BoolArray | None = None) -> set[int]:
    """Start pfns of the chunks of ``values`` (kpageflags from ``start``) that
    hold an allocated page."""
    return {int(p) // chunk * chunk for p in start + np.flatnonzero(_held(values, online))}


def capture_online(cap: Capture, step: str) -> BoolArray:
    """Which pfns of the capture's range are in a block whose sysfs ``state``
    reads "online" in ``step``."""
    rs, re_ = cap.manifest["range_start_pfn"], cap.manifest["range_end_pfn"]
    pages = cap.manifest["block_size_bytes"] >> 12
    out = np.zeros(re_ - rs, dtype=bool)
    for blk in hot_blocks(cap):
        if cap.text(step, f"sys/devices/system/memory/memory{blk}/state").strip() == "online":
            out[blk * pages - rs:(blk + 1) * pages - rs] = True
    return out


def machine_online(m: Machine, start: int, end: int) -> BoolArray:
    """Which pfns of [start, end) are in an online section of ``m``."""
    sec = np.arange(start, end) >> (m.arch.section_size_bits - m.arch.page_shift)
    sec = np.minimum(sec, len(m.sec_flags) - 1)
    online: BoolArray = (m.sec_flags[sec] & SECTION_IS_ONLINE) != 0
    return online


def kernel_held_chunks(cap: Capture, chunk: int) -> set[int]:
    """Chunks the kernel's own allocations reach in any step of the capture.
    Every step is taken, not just the one compared: the guest reads kpageflags
    first and the /proc files after, and those reads allocate (seq_file
    buffers), so a step's buddyinfo can already show pages its kpageflags
    still showed free."""
    rs = cap.manifest["range_start_pfn"]
    out: set[int] = set()
    for st in cap.manifest["steps"]:
        raw = cap.step_file(st["dir"], "kpageflags") or b""
        out |= held_chunks(rs, np.frombuffer(raw, dtype="<u8"), chunk,
                           capture_online(cap, st["dir"]))
    return out


def cmp_kpageflags(cap: Capture, step: str, m: Machine, skip: Skip | None) -> Outcome:
    rs, re_ = cap.manifest["range_start_pfn"], cap.manifest["range_end_pfn"]
    raw = cap.step_file(step, "kpageflags")
    if raw is None:
        return False, "kernel file missing", ""
    kern = np.frombuffer(raw, dtype="<u8")
    hot = kpageflags(m, rs, re_).astype(np.uint64)
    if len(hot) > len(kern):
        return (False, f"hotmem reports pfns {rs + len(kern):#x}-{rs + len(hot) - 1:#x} that the "
                f"kernel file does not cover (kernel file ends at pfn {rs + len(kern):#x}: "
                "beyond max_pfn)", "")
    # beyond hotmem's max_pfn the kernel must report a pfn without an online
    # memmap (max_pfn never drops): NOPAGE, 0x0 from 6.17
    want = np.full(len(kern), unpopulated_value(m.kernel), dtype=np.uint64)
    want[:len(hot)] = hot
    diff = kern != want
    skipped = ""
    if skip is not None and skip.chunks:
        diff &= ~skip.mask(rs, len(kern))
        skipped = skip.describe()
    bad = np.flatnonzero(diff)
    if not len(bad):
        return True, "", skipped
    i = int(bad[0])
    where = "" if i < len(hot) else (" (beyond hotmem's max_pfn: kernel must read "
                                     f"{_kpf(int(unpopulated_value(m.kernel)))})")
    return (False, f"pfn {rs + i:#x}: kernel {_kpf(int(kern[i]))}, hotmem {_kpf(int(want[i]))}"
            f"{where}; "
            f"{len(bad)} pfn(s) differ", skipped)


def _zone_free_blocks(m: Machine, zname: str,
                      skip: Skip | None) -> tuple[IntArray, dict[int, IntArray]]:
    """hotmem's free blocks of a zone outside the skipped chunks:
    (per order counts, {migratetype: per order counts})."""
    orders = m.arch.max_page_order + 1
    per_order = np.zeros(orders, dtype=np.int64)
    per_type = {mt: np.zeros(orders, dtype=np.int64) for mt, _ in migratetype_columns(m)}
    z = m.zone_by_name(zname)
    if z.is_empty():
        return per_order, per_type
    heads, ords = m.pages.free_blocks(z.zone_start_pfn, z.zone_end_pfn)
    for h, o in zip(heads.tolist(), ords.tolist(), strict=True):
        if m.pages.pageblock(h)[2] != z.zid or (skip and skip.contains(h)):
            continue
        mt, iso, _ = m.pages.pageblock(h)
        per_order[o] += 1
        per_type[MIGRATE_ISOLATE if iso else mt][o] += 1
    return per_order, per_type


def _skip_pages_in_zone(m: Machine, zname: str, skip: Skip) -> int:
    z = m.zone_by_name(zname)
    return sum(max(0, min(c + skip.chunk_pages, z.zone_end_pfn) - max(c, z.zone_start_pfn))
               for c in skip.chunks)


def _residual_ok(kern: list[int], out: IntArray, room_pages: int) -> str:
    """'' when kern = out + something that fits in room_pages, else why not."""
    res = np.array(kern, dtype=np.int64) - out[:len(kern)]
    neg = np.flatnonzero(res < 0)
    if len(neg):
        o = int(neg[0])
        return (f"order {o}: kernel {kern[o]} < hotmem's {int(out[o])} outside the skipped "
                "chunks")
    pages = int((res * (1 << np.arange(len(res), dtype=np.int64))).sum())
    if pages > room_pages:
        return f"kernel has {pages} more free pages than the skipped chunks hold ({room_pages})"
    return ""


def _zone_skip(m: Machine, zname: str, skip: Skip | None) -> Skip | None:
    if skip is None or not skip.chunks:
        return None
    return skip if _skip_pages_in_zone(m, zname, skip) else None


def cmp_buddyinfo(cap: Capture, step: str, m: Machine, skip: Skip | None) -> Outcome:
    kern = parse_buddyinfo(cap.text(step, "proc/buddyinfo"))
    hot = parse_buddyinfo(buddyinfo(m))
    kz, hz = [k[1] for k in kern], [k[1] for k in hot]
    if kz != hz:
        return False, f"zones listed: kernel {kz}, hotmem {hz}", ""
    skipped: list[str] = []
    for (nid, zname), row in kern.items():
        if zname not in cap.hot_zones:
            continue
        zs = _zone_skip(m, zname, skip)
        if zs is None:
            if row != hot[(nid, zname)]:
                return False, f"Node {nid} {zname}: kernel {row}, hotmem {hot[(nid, zname)]}", ""
            continue
        out, _ = _zone_free_blocks(m, zname, zs)
        why = _residual_ok(row, out, _skip_pages_in_zone(m, zname, zs))
        skipped.append(f"{zname}: free blocks in the skipped chunks")
        if why:
            return (False, f"Node {nid} {zname} outside the skipped chunks: {why} (kernel {row}, "
                    f"hotmem outside {out.tolist()})", "; ".join(skipped))
    return True, "", "; ".join(skipped)


def cmp_zoneinfo(cap: Capture, step: str, m: Machine, skip: Skip | None) -> Outcome:
    kern = parse_zoneinfo(cap.text(step, "proc/zoneinfo"))
    hot = parse_zoneinfo(zoneinfo(m))
    if list(kern) != list(hot):
        return False, f"zones: kernel {[k[1] for k in kern]}, hotmem {[k[1] for k in hot]}", ""
    skipped = ""
    boot_k = parse_zoneinfo(cap.text("00-boot", "proc/zoneinfo"))
    for key, kf in kern.items():
        if key[1] not in cap.hot_zones:
            # a zone boot memory shares: what the steps changed is compared
            bk, bh = boot_k.get(key), cap.hotmem_boot.get(key)
            if key[1] in HOT_ZONES and bk is not None and bh is not None and key in hot:
                for fld in ("spanned", "present", "managed"):
                    dk = (kf.get(fld) or 0) - (bk.get(fld) or 0)
                    dh = (hot[key].get(fld) or 0) - (bh.get(fld) or 0)
                    if dk != dh:
                        return (False, f"Node {key[0]} {key[1]} {fld} since boot: kernel "
                                f"{dk:+d}, hotmem {dh:+d}", skipped)
            continue
        hf = hot[key]
        zs = _zone_skip(m, key[1], skip)
        for fld in ZONEINFO_FIELDS:
            kv, hv = kf.get(fld), hf.get(fld)
            if fld == "pages free" and zs is not None:
                out, _ = _zone_free_blocks(m, key[1], zs)
                free_out = int((out * (1 << np.arange(len(out), dtype=np.int64))).sum())
                room = _skip_pages_in_zone(m, key[1], zs)
                skipped = f"{key[1]} pages free in the skipped chunks"
                if kv is None or not free_out <= kv <= free_out + room:
                    return (False, f"Node {key[0]} {key[1]} pages free: kernel {kv}, hotmem "
                            f"{free_out} outside the skipped chunks + up to {room}", skipped)
                continue
            if fld == "nr_free_pages_blocks" and zs is not None and kv is not None:
                # free pages in blocks of pageblock order or more, not isolated
                _, per_type = _zone_free_blocks(m, key[1], zs)
                pbo = m.arch.pageblock_order
                sizes = 1 << np.arange(m.arch.max_page_order + 1, dtype=np.int64)
                blk_out = sum(int((row[pbo:] * sizes[pbo:]).sum())
                              for mt, row in per_type.items() if mt != MIGRATE_ISOLATE)
                room = _skip_pages_in_zone(m, key[1], zs)
                if not blk_out <= kv <= blk_out + room:
                    return (False, f"Node {key[0]} {key[1]} nr_free_pages_blocks: kernel {kv}, "
                            f"hotmem {blk_out} outside the skipped chunks + up to {room}",
                            skipped)
                continue
            if kv != hv:
                return (False, f"Node {key[0]} {key[1]} {fld}: kernel {kv}, hotmem {hv}"
                        + (" (not printed)" if kv is None or hv is None else ""), skipped)
    return True, "", skipped


BOOT_LAYOUT_FIELDS = ("spanned", "present", "start_pfn")


def boot_zone_note(cap: Capture, step: str, m: Machine) -> str:
    """Loose comparison of the boot zones: their layout (spanned, present,
    start_pfn), which firmware's e820 map fixes; their managed and free pages
    depend on the boot's own allocations and are not compared."""
    kern = parse_zoneinfo(cap.text(step, "proc/zoneinfo"))
    hot = parse_zoneinfo(zoneinfo(m))
    out = []
    for key, kf in kern.items():
        if key[1] in cap.hot_zones or key not in hot:
            continue
        for fld in BOOT_LAYOUT_FIELDS:
            if kf.get(fld) != hot[key].get(fld):
                out.append(f"{key[1]} {fld} kernel {kf.get(fld)} hotmem {hot[key].get(fld)}")
    return "boot zones (loose): " + ", ".join(out) if out else ""


def cmp_pagetypeinfo(cap: Capture, step: str, m: Machine, skip: Skip | None) -> Outcome:
    kfree, kblk, kcols = parse_pagetypeinfo(cap.text(step, "proc/pagetypeinfo"))
    hfree, hblk, hcols = parse_pagetypeinfo(pagetypeinfo(m))
    if kcols != hcols:
        return False, f"migratetype columns: kernel {kcols}, hotmem {hcols}", ""
    kz = sorted({k[1] for k in kfree})
    hz = sorted({k[1] for k in hfree})
    if kz != hz:
        return False, f"zones listed: kernel {kz}, hotmem {hz}", ""
    names = dict((n, mt) for mt, n in migratetype_columns(m))
    skipped: list[str] = []
    for key, row in kfree.items():
        if key[1] not in cap.hot_zones:
            continue
        zs = _zone_skip(m, key[1], skip)
        if zs is None:
            if row != hfree.get(key):
                return (False, f"Node {key[0]} {key[1]} {key[2]} free: kernel {row}, hotmem "
                        f"{hfree.get(key)}", "")
            continue
        _, per_type = _zone_free_blocks(m, key[1], zs)
        why = _residual_ok(row, per_type[names[key[2]]], _skip_pages_in_zone(m, key[1], zs))
        if why:
            return (False, f"Node {key[0]} {key[1]} {key[2]} free outside the skipped chunks: "
                    f"{why}", "free blocks in the skipped chunks")
    cols = kcols or []   # no column line: no pageblock rows either
    for bkey, row in kblk.items():
        if bkey[1] not in cap.hot_zones:
            continue
        zs = _zone_skip(m, bkey[1], skip)
        if zs is None:
            if row != hblk.get(bkey):
                return (False, f"Node {bkey[0]} {bkey[1]} pageblocks {cols}: kernel {row}, hotmem "
                        f"{hblk.get(bkey)}", "")
            continue
        # pageblocks outside the skipped chunks must agree type by type; the
        # remainder must be exactly the pageblocks of the skipped chunks
        out = _pageblocks_outside(m, bkey[1], zs, [names[c] for c in cols])
        res = np.array(row) - out
        inside = _skip_pages_in_zone(m, bkey[1], zs) >> m.arch.pageblock_order
        skipped.append(f"{bkey[1]}: free blocks and pageblock types in the skipped chunks")
        if (res < 0).any() or int(res.sum()) != inside:
            return (False, f"Node {bkey[0]} {bkey[1]} pageblocks {cols}: kernel {row}, hotmem "
                    f"outside the skipped chunks {out.tolist()} (+{inside} skipped pageblocks)",
                    "; ".join(skipped))
    return True, "", "; ".join(dict.fromkeys(skipped))


def _pageblocks_outside(m: Machine, zname: str, skip: Skip, types: list[int]) -> IntArray:
    z = m.zone_by_name(zname)
    pbo = m.arch.pageblock_order
    s, e = z.zone_start_pfn >> pbo << pbo, -(-z.zone_end_pfn >> pbo) << pbo
    mt, zn = m.pages.pageblock_bytes(s, e)
    pfns = s + (np.arange(len(mt), dtype=np.int64) << pbo)
    sec = pfns >> (m.arch.section_size_bits - m.arch.page_shift)
    ok = (zn == z.zid + 1) & ((m.sec_flags[sec] & SECTION_IS_ONLINE) != 0)
    ok &= ~np.array([skip.contains(int(p)) for p in pfns], dtype=bool)
    kinds = np.where(mt & 0x80, MIGRATE_ISOLATE, mt & 7)[ok]
    return np.array([0 if t == MIGRATE_CMA_COLUMN else int(np.count_nonzero(kinds == t))
                     for t in types], dtype=np.int64)


def hot_blocks(cap: Capture) -> range:
    pages = cap.manifest["block_size_bytes"] >> 12
    return range(cap.manifest["range_start_pfn"] // pages, cap.manifest["range_end_pfn"] // pages)


def _show(v: bytes | None) -> str:
    return "absent" if v is None else repr(v.decode())


def cmp_sysfs(cap: Capture, step: str, m: Machine, fname: str) -> Outcome:
    for blk in hot_blocks(cap):
        kern = cap.step_file(step, f"sys/devices/system/memory/memory{blk}/{fname}")
        hot = None
        if blk < m.nr_blocks and m.blk_state[blk]:
            hot = sysfs_view.block_files(m, blk)[fname].encode()
        if kern != hot:
            return False, f"memory{blk}/{fname}: kernel {_show(kern)}, hotmem {_show(hot)}", ""
    return True, "", ""


def cmp_block_size(cap: Capture, step: str, m: Machine) -> Outcome:
    kern = cap.step_file(step, "sys/devices/system/memory/block_size_bytes")
    hot = sysfs_view.block_size_bytes(m).encode()
    if kern != hot:
        return False, f"kernel {kern!r}, hotmem {hot!r}", ""
    return True, "", ""


def _hotmem_outcome(results: list[StepResult], block: int | None) -> tuple[str, str]:
    for r in results:
        outcome, msg = r.result, r.message
        if block is not None and r.outcomes:
            hit = [o for b, o in r.outcomes if b == block]
            if hit:
                outcome = hit[0]
        if outcome != "ok":
            return outcome, msg
    return "ok", ""


def cmp_outcome(kstep: ManifestStep, results: list[StepResult],
                m: Machine | None = None) -> Outcome:
    if not results:
        # a capture step no scenario step maps to does nothing to memory
        if kstep["result"] != "ok":
            return (False, f"{kstep['op']}: kernel {kstep['result']}, and no scenario step "
                    "maps to this capture step", "")
        return True, "", "no hotmem step (nothing changes memory here)"
    block = kstep.get("block")
    hot, msg = _hotmem_outcome(results, block)
    plugged = _host_plugged(kstep, m)
    if plugged is not None and hot == "EBUSY":
        # the host asked a virtio-mem device to shrink and the driver could not
        # unplug everything: it retries on a timer and QEMU sees the plugged
        # size stay above the request ("short"); it has no errno to report
        hot = "short"
    if hot != kstep["result"]:
        where = "" if block is None else f"memory{block}"
        return (False, f"{kstep['op']} {where}: kernel {kstep['result']}, hotmem {hot}"
                + (f" ({msg})" if msg else ""), "")
    if plugged is not None and plugged[0] != plugged[1]:
        return (False, f"{kstep['op']}: plugged size: kernel {plugged[0]}, hotmem {plugged[1]}",
                "")
    return True, "", ""


def _host_plugged(kstep: ManifestStep, m: Machine | None) -> tuple[int, int] | None:
    """(kernel, hotmem) plugged size of the device a host resize step names."""
    dev, size = kstep.get("device"), kstep.get("plugged_size")
    if m is None or kstep["op"] != "host" or not dev or size is None:
        return None
    name = dev.get("id")
    if not isinstance(name, str) or name not in m.devices:
        return None
    return size, m.device(name).plugged_size(m)


# ---------------------------------------------------------------- driver

def compare_step(cap: Capture, kstep: ManifestStep, m: Machine, results: list[StepResult],
                 kernel_chunks: set[int] | None) -> list[Record]:
    step = kstep["dir"]
    recs: list[Record] = []

    def add(fname: str, res: Outcome) -> None:
        ok, detail, skipped = res
        recs.append(Record(cap.name, step, fname, ok, detail, skipped))

    add("outcome", cmp_outcome(kstep, results, m))
    skip: Skip | None = None
    if kernel_chunks is not None:
        # the kernel's chunks, and those of hotmem's stand-in allocation
        rs, re_ = cap.manifest["range_start_pfn"], cap.manifest["range_end_pfn"]
        chunk = 1 << m.arch.max_page_order
        mine = held_chunks(rs, kpageflags(m, rs, re_).astype(np.uint64), chunk,
                           machine_online(m, rs, re_))
        skip = Skip(chunk, sorted(kernel_chunks | mine))
    add("kpageflags", cmp_kpageflags(cap, step, m, skip))
    add("buddyinfo", cmp_buddyinfo(cap, step, m, skip))
    add("zoneinfo", cmp_zoneinfo(cap, step, m, skip))
    recs[-1].note = boot_zone_note(cap, step, m)
    add("pagetypeinfo", cmp_pagetypeinfo(cap, step, m, skip))
    add("state", cmp_sysfs(cap, step, m, "state"))
    add("valid_zones", cmp_sysfs(cap, step, m, "valid_zones"))
    add("block_size_bytes", cmp_block_size(cap, step, m))
    return recs


def compare_keys_step(cap: Capture, kstep: ManifestStep, m: Machine, results: list[StepResult],
                      kernel_chunks: set[int] | None) -> list[Record]:
    """The layout of the /proc files, not their values: the keys of every
    /proc/zoneinfo zone section, in order, and the migratetypes of
    /proc/pagetypeinfo's free rows and pageblock columns."""
    step = kstep["dir"]
    kz, hz = zoneinfo_keys(cap.text(step, "proc/zoneinfo")), zoneinfo_keys(zoneinfo(m))
    ok, detail = True, ""
    if list(kz) != list(hz):
        ok, detail = False, f"zone sections: kernel {list(kz)}, hotmem {list(hz)}"
    else:
        for key, keys in kz.items():
            if keys != hz[key]:
                only_k = [k for k in keys if k not in hz[key]]
                only_h = [k for k in hz[key] if k not in keys]
                ok, detail = False, (f"Node {key[0]} {key[1]}: kernel only {only_k}, hotmem only "
                                     f"{only_h}" + ("" if only_k or only_h else
                                                    f", order: kernel {keys}, hotmem {hz[key]}"))
                break
    recs = [Record(cap.name, step, "zoneinfo keys", ok, detail)]
    kc = pagetypeinfo_columns(cap.text(step, "proc/pagetypeinfo"))
    hc = pagetypeinfo_columns(pagetypeinfo(m))
    recs.append(Record(cap.name, step, "pagetypeinfo columns", kc == hc,
                       "" if kc == hc else f"kernel {kc}, hotmem {hc}"))
    return recs


def check_keys(path: str | Path) -> list[Record]:
    """Replay one capture and compare the layout of /proc/zoneinfo and
    /proc/pagetypeinfo after every step (compare_keys_step)."""
    return check_capture(path, step_fn=compare_keys_step)


#: what compares one capture step: (capture, its manifest step, the machine
#: after the scenario steps mapped to it, their results, the skipped chunks)
StepFn = Callable[[Capture, ManifestStep, Machine, list[StepResult], set[int] | None],
                  list[Record]]


def check_capture(path: str | Path, scenario_text: str | None = None,
                  step_fn: StepFn = compare_step) -> list[Record]:
    """Replay one capture in hotmem; a Record per (capture step, file).
    ``scenario_text`` replaces the capture's .toml (for experiments);
    ``step_fn`` makes the records of one step (compare_step: the values)."""
    cap = Capture.load(path)
    if scenario_text is not None:
        cap.toml, cap.source = scenario_text, f"<scenario for {cap.name}>"
    sc = loads_scenario(cap.toml, cap.source)
    era = str(sc.machine.get("kernel"))
    if era != cap.manifest["era"]:
        return [Record(cap.name, "-", f, False, f"scenario kernel {era!r} is not the capture's "
                       f"era {cap.manifest['era']!r}") for f in FILES]
    ksteps = {s["dir"]: s for s in cap.manifest["steps"]}
    last_of: dict[str, int] = {}
    for st in sc.steps:
        if st.capture is not None:
            if st.capture not in ksteps:
                return [Record(cap.name, st.capture, "outcome", False,
                               f"{cap.source}: step {st.index} names capture step "
                               f"{st.capture!r}, which the capture does not have")]
            last_of[st.capture] = st.index
    compare_at = {i: d for d, i in last_of.items()}
    records: list[Record] = []
    m = sc.build_machine()
    cap.hotmem_boot = parse_zoneinfo(zoneinfo(m))
    # the kernel's own allocations (slab, seq_file buffers, pages on per-cpu
    # lists, which hotmem does not model) and those of a scenario's stand-in
    # alloc step: the MAX_ORDER chunks they reach are compared by residual
    kernel_chunks = kernel_held_chunks(cap, 1 << m.arch.max_page_order) or None
    if any(st.op == "alloc" for st in sc.steps):
        kernel_chunks = kernel_chunks or set()
    # capture steps no scenario step maps to (00-boot, and steps that do
    # nothing to memory, such as switching a namespace to devdax) are compared
    # with the machine as the scenario steps before them left it
    order = [s["dir"] for s in cap.manifest["steps"]]
    unmapped_after: dict[str | None, list[str]] = {}
    prev: str | None = None
    for d in order:
        if d in last_of:
            prev = d
        else:
            unmapped_after.setdefault(prev, []).append(d)
    for d in unmapped_after.get(None, []):
        records += step_fn(cap, ksteps[d], m, [], kernel_chunks)
    pending: list[StepResult] = []

    def on_step(mach: Machine, res: StepResult) -> None:
        nonlocal pending
        pending.append(res)
        d = compare_at.get(res.step.index)
        if res.step.capture is None and not res.ok:
            # a stand-in step (e.g. the kernel's allocations) must itself succeed
            records.append(Record(cap.name, f"{res.step.label} (no capture)", "outcome", False,
                                  f"hotmem {res.result}: {res.message}"))
        if d is not None:
            mapped = [r for r in pending if r.step.capture == d]
            records.extend(step_fn(cap, ksteps[d], mach, mapped, kernel_chunks))
            pending = []
            for u in unmapped_after.get(d, []):
                records.extend(step_fn(cap, ksteps[u], mach, [], kernel_chunks))

    run_scenario(sc, machine=m, on_step=on_step)
    return records


def summarize(records: list[Record]) -> dict[tuple[str, str], Record | None]:
    """(capture, file) -> first failing record, or None when every step matched."""
    out: dict[tuple[str, str], Record | None] = {}
    for r in records:
        key = (r.capture, r.file)
        if key not in out:
            out[key] = None
        if not r.ok and out[key] is None:
            out[key] = r
    return out


def format_report(records: list[Record]) -> str:
    summ = summarize(records)
    captures = list(dict.fromkeys(r.capture for r in records))
    lines = []
    for cap in captures:
        lines.append(f"== {cap}")
        for f in FILES:
            if (cap, f) not in summ:
                continue
            r = summ[(cap, f)]
            n = sum(1 for x in records if x.capture == cap and x.file == f)
            bad = sum(1 for x in records if x.capture == cap and x.file == f and not x.ok)
            skipped = sorted({x.skipped for x in records
                              if x.capture == cap and x.file == f and x.skipped
                              and not x.skipped.startswith("no hotmem step")})
            note = "  (parts skipped: kernel allocations)" if skipped else ""
            notes = list(dict.fromkeys(x.note for x in records
                                       if x.capture == cap and x.file == f and x.note))
            if notes:
                note += "; " + " | ".join(notes)
            if r is None:
                lines.append(f"  {f:<17} match ({n} steps){note}")
            else:
                lines.append(f"  {f:<17} DIFF at {r.step} ({bad}/{n} steps differ): {r.detail}")
    lines.append("")
    lines.append(format_matrix(records))
    return "\n".join(lines)


def format_matrix(records: list[Record]) -> str:
    summ = summarize(records)
    captures = list(dict.fromkeys(r.capture for r in records))
    short = {"outcome": "outcome", "kpageflags": "kpageflags", "buddyinfo": "buddyinfo",
             "zoneinfo": "zoneinfo", "pagetypeinfo": "pagetypeinfo", "state": "state",
             "valid_zones": "valid_zones", "block_size_bytes": "block_size"}
    w = max(len(c) for c in captures) if captures else 8
    head = f"{'capture':<{w}} " + " ".join(f"{short[f]:>{len(short[f])}}" for f in FILES)
    lines = [head]
    for cap in captures:
        cells = []
        for f in FILES:
            key = (cap, f)
            if key not in summ:
                cell = "-"
            elif summ[key] is None:
                partial = any(x.skipped and not x.skipped.startswith("no hotmem step")
                              for x in records if x.capture == cap and x.file == f)
                cell = "match*" if partial else "match"
            else:
                cell = "DIFF"
            cells.append(f"{cell:>{len(short[f])}}")
        lines.append(f"{cap:<{w}} " + " ".join(cells))
    if any("match*" in ln for ln in lines):
        lines.append("match* = matches outside the chunks holding the kernel's own "
                     "(non-deterministic) allocations")
    notes = sorted({r.note for r in records if r.note})
    if notes:
        lines.append("loose (not failing): " + " | ".join(notes))
    return "\n".join(lines)


def resolve(names: list[str]) -> list[Path]:
    if not names:
        found = sorted(default_dir().glob("*.tar.xz"), key=_capture_order)
        if not found:
            raise FileNotFoundError(
                f"no captures in {default_dir()}: they live in hotmem's source tree "
                "(tests/data/oracle); run from a clone, or set HOTMEM_ORACLE_DIR or "
                "name the .tar.xz files")
        return found
    out: list[Path] = []
    for n in names:
        p = Path(n)
        if not p.exists() and not n.endswith(".tar.xz"):
            p = default_dir() / f"{n}.tar.xz"
        if not p.exists():
            raise FileNotFoundError(f"no capture {n!r} (looked for {p})")
        out.append(p)
    return out


def _capture_order(p: Path) -> tuple[int, str] | tuple[int, tuple[int, ...], int]:
    mo = re.match(r"(\d+\.\d+)-mom(\d)-(\w+)", p.name)
    if not mo:
        return (9, p.name)
    scen = {"movable": 0, "default": 1, "qmp": 2}.get(mo[3], 9)
    return (scen, tuple(int(x) for x in mo[1].split(".")), int(mo[2]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hotmem fidelity",
                                 description="Compare hotmem with real-kernel captures "
                                 "(tests/data/oracle/*.tar.xz).")
    ap.add_argument("captures", nargs="*", metavar="CAPTURE",
                    help="capture .tar.xz files or names (default: every committed capture)")
    ap.add_argument("--json", action="store_true", help="print every comparison as JSON")
    args = ap.parse_args(argv)
    try:
        paths = resolve(args.captures)
    except FileNotFoundError as err:
        print(f"hotmem fidelity: error: {err}", file=sys.stderr)
        return 2
    if not paths:
        print(f"hotmem fidelity: error: no captures in {default_dir()}", file=sys.stderr)
        return 2
    records: list[Record] = []
    for p in paths:
        records += check_capture(p)
    try:
        _print(records, args.json)
    except BrokenPipeError:
        return 0
    return 0 if all(r.ok for r in records) else 1


def _matrix_cell(first_bad: Record | None) -> str:
    return "match" if first_bad is None else first_bad.detail


def _print(records: list[Record], as_json: bool) -> None:
    if as_json:
        summ = summarize(records)
        json.dump({"records": [asdict(r) for r in records],
                   "matrix": {cap: {f: _matrix_cell(summ[(c, f)]) for (c, f) in summ if c == cap}
                              for cap in dict.fromkeys(r.capture for r in records)}},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_report(records))


if __name__ == "__main__":
    sys.exit(main())
