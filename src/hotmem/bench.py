"""``hotmem bench``: the scan strategies side by side, with ratios measured in the
same run against the pure-Python reference and against the memory-bandwidth bound.

    hotmem bench [--sizes 1G,64G,1T] [--paths vmemmap,isolation,free,lifecycle]
                 [--repeat 5] [--json]

Workloads are hot-added memory on x86_64 (128 MiB blocks, memmap on memory,
every block online_movable).  The same builders drive ``benchmarks/`` (pytest-
benchmark); this module is their one home.

Ratios:

* ``vs_ref`` = reference time / strategy time (how many times faster).  The
  reference runs on at most ``REF_PAGES[path]`` pages and is scaled linearly by
  pages (or, for the lifecycle, by blocks); ``ref_extrapolated_from_pages`` says
  from how many, 0 when it ran at full size.
* ``vs_bound`` = strategy time / bound time (1.0 is the bandwidth limit), where the
  bound is a pure streaming read (``_scan.read_words``) of as many bytes as the
  strategy must touch, on memory that was written first (no zero page), in the
  same process, through one call like the strategy's.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, NotRequired, TypedDict, TypeVarTuple, get_args, overload

import numpy as np
import numpy.typing as npt

from . import _core, _scan
from . import strategies as S
from .constants import Backend
from .machine import Machine
from .memory_hotplug import default_add_start
from .reference import RefPageState
from .units import parse_size

Ts = TypeVarTuple("Ts")
# the hot paths a Case times (``isolation`` is two of them)
CasePath = Literal["vmemmap", "has_unmovable", "test_pages_isolated", "free"]
LifecycleMode = Literal["batched", "per_block"]

SIZES = ("1G", "64G", "1T")
PATHS = ("vmemmap", "isolation", "free", "lifecycle")
# run only when asked for: child processes of up to 5 GiB and half a minute
EXTRA_PATHS = ("rss", "machines")
# largest size the pure-Python references run at; beyond, they are extrapolated
REF_PAGES = {"vmemmap": 1 << 18, "isolation": 1 << 18, "free": 1 << 16}
REF_LIFECYCLE_SIZE = "1G"
ARCH = "x86_64"
BOOT = "4G"


def fmt_size(nbytes: int) -> str:
    for unit, shift in (("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if nbytes >= 1 << shift and nbytes % (1 << shift) == 0:
            return f"{nbytes >> shift}{unit}"
    return str(nbytes)


# ---------------------------------------------------------------- timing

def time_once(fn: Callable[[*Ts], object], *args: *Ts) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


@overload
def median_time(fn: Callable[[*Ts], object], *args: *Ts, repeat: int = 5, setup: None = None,
                budget: float = 2.0) -> float: ...
@overload
def median_time(fn: Callable[[*Ts], object], *, repeat: int = 5,
                setup: Callable[[], tuple[*Ts]], budget: float = 2.0) -> float: ...
def median_time(fn: Callable[..., object], *args: object, repeat: int = 5,
                setup: Callable[[], tuple[object, ...]] | None = None,
                budget: float = 2.0) -> float:
    """Median wall time of ``fn(*args)`` (``fn(*setup())`` when setup is given,
    setup untimed) over ``repeat`` runs, fewer when one run exceeds budget/3."""
    times: list[float] = []
    for _ in range(max(1, repeat)):
        a = setup() if setup is not None else args
        times.append(time_once(fn, *a))
        if sum(times) > budget and len(times) >= 1:
            break
    return statistics.median(times)


@functools.cache
def _read_buffer(nwords: int) -> npt.NDArray[np.uint64]:
    # really written memory: np.ones writes every page (np.zeros would map the
    # shared zero page and read impossibly fast)
    return np.ones(max(nwords, 1), dtype=np.uint64)


@functools.cache
def bound_time(nbytes: int) -> float:
    """Time of a streaming read of nbytes (best of 7, warm): the bandwidth bound."""
    buf = _read_buffer(-(-nbytes // 8))
    _scan.read_words(buf)
    return min(time_once(_scan.read_words, buf) for _ in range(7))


@functools.cache
def dram_read_bandwidth(nbytes: int = 1 << 30) -> float:
    """Bytes per second of a streaming read larger than the caches."""
    return nbytes / bound_time(nbytes)


# ---------------------------------------------------------------- workloads

@dataclass
class Workload:
    """A machine with ``size`` bytes hot-added and onlined movable, and copies of
    the planes over the hot-added range."""

    size: int
    start_pfn: int
    nr_pages: int
    nr_sections: int
    nr_blocks: int
    pages_per_section: int
    sections_per_block: int
    first_section: int
    planes: dict[str, npt.NDArray[np.uint64]] = field(repr=False)
    summary: npt.NDArray[np.int32] = field(repr=False)
    nr_vmemmap_pages: npt.NDArray[np.int64] = field(repr=False)


def online_machine(size: int, backend: Backend = "fast") -> tuple[Machine, list[int]]:
    m = Machine(ARCH, boot_memory=BOOT, memmap_on_memory="y", backend=backend)
    blocks = m.add(size=size)
    for b in blocks:
        m.online(b, "online_movable")
    return m, blocks


@functools.lru_cache(maxsize=4)
def workload(size: int) -> Workload:
    m, blocks = online_machine(size)
    pps = m.arch.pages_per_section
    s = m.block_range(blocks[0])[0]
    n = len(blocks) * m.pages_per_block
    planes = {name: m.pages.words(_core.PLANES[name], s, s + n)
              for name in ("vmemmap", "reserved", "unmovable", "buddy")}
    summary = S.SectionSummary.from_machine(m).counts
    return Workload(size=size, start_pfn=s, nr_pages=n, nr_sections=n // pps,
                    nr_blocks=len(blocks), pages_per_section=pps,
                    sections_per_block=m.sections_per_block, first_section=s // pps,
                    planes=planes, summary=summary, nr_vmemmap_pages=S.nr_vmemmap_per_block(m))


@dataclass
class Case:
    """One strategy on one hot path at one size: what to run and what it touches."""

    path: CasePath
    strategy: str
    size: int
    pages: int
    bytes_touched: int
    run: Callable[..., object]   # the kernels of a path differ in arguments and result
    args: tuple[object, ...] = ()
    setup: Callable[[], tuple[object, ...]] | None = None   # untimed: run's arguments
    check: Callable[[object], None] | None = None   # asserts on run's result


def _prefix_bytes(w: Workload) -> int:
    # cache lines read per section: up to and including the first word that is
    # not all vmemmap
    b0 = w.first_section // w.sections_per_block
    words = w.nr_vmemmap_pages[b0:b0 + w.nr_blocks] // 64   # per block, into its first section
    per_sec = np.full(w.nr_sections, 1, dtype=np.int64)
    first = np.arange(w.nr_blocks) * w.sections_per_block
    per_sec[first] = np.minimum(words + 1, w.pages_per_section // 64)
    return int((-(-(per_sec * 8) // 64) * 64).sum())


def vmemmap_cases(w: Workload) -> list[Case]:
    out = np.empty(w.nr_sections, dtype=np.int64)
    plane = w.planes["vmemmap"]
    out_bytes = 8 * w.nr_sections
    cases: list[Case] = []
    for strategy in ("per_page", "wordwise"):
        kernel = {"per_page": _scan.vmemmap_per_page, "wordwise": _scan.vmemmap_wordwise}[strategy]
        cases.append(Case("vmemmap", strategy, w.size, w.nr_pages, plane.nbytes + out_bytes,
                          kernel, (plane, w.nr_sections, w.pages_per_section, out)))
    cases.append(Case("vmemmap", "prefix", w.size, w.nr_pages, _prefix_bytes(w) + out_bytes,
                      _scan.vmemmap_prefix, (plane, w.nr_sections, w.pages_per_section, out)))
    cases.append(Case("vmemmap", "section_summary", w.size, w.nr_pages,
                      4 * w.nr_sections + out_bytes, _scan.vmemmap_from_summary,
                      (w.summary, w.first_section, w.nr_sections, out)))
    cases.append(Case("vmemmap", "block_metadata", w.size, w.nr_pages,
                      8 * w.nr_blocks + out_bytes, _scan.vmemmap_from_blocks,
                      (w.nr_vmemmap_pages, w.first_section, w.nr_sections,
                       w.sections_per_block, w.pages_per_section, out)))
    expect = S.vmemmap_per_section("block_metadata", nr_sections=w.nr_sections,
                                   pages_per_section=w.pages_per_section,
                                   first_section=w.first_section,
                                   nr_vmemmap_pages=w.nr_vmemmap_pages,
                                   sections_per_block=w.sections_per_block)

    def check(_result: object, out: npt.NDArray[np.int64] = out,
              expect: npt.NDArray[np.int64] = expect) -> None:
        assert np.array_equal(out, expect), "vmemmap strategies disagree"
    for c in cases:
        c.check = check
    return cases


def isolation_cases(w: Workload) -> list[Case]:
    """The whole hot-added range, clean (so every page is looked at): the
    has_unmovable_pages() question outside ZONE_MOVABLE with vmemmap pages
    skipped (reads reserved, vmemmap, unmovable) and test_pages_isolated() with
    vmemmap pages skipped (reads buddy, vmemmap)."""
    p = w.planes
    n = w.nr_pages
    cases: list[Case] = []
    for strategy in ("per_page", "wordwise"):
        hu = (_scan.has_unmovable_per_page if strategy == "per_page"
              else _scan.has_unmovable_wordwise)
        cases.append(Case("has_unmovable", strategy, w.size, n, 3 * p["vmemmap"].nbytes, hu,
                          (p["reserved"], p["vmemmap"], p["unmovable"], 0, n, False, True)))
        fnf = (_scan.first_not_free_per_page if strategy == "per_page"
               else _scan.first_not_free_wordwise)
        cases.append(Case("test_pages_isolated", strategy, w.size, n, 2 * p["vmemmap"].nbytes,
                          fnf, (p["buddy"], p["vmemmap"], 0, n, True)))

    def check(result: object) -> None:
        assert result == -1, f"clean range reported pfn {result}"
    for c in cases:
        c.check = check
    return cases


FREE_START_PFN = (4 << 30) >> 12     # 4 GiB: aligned to the max order


@overload
def fresh_state(nr_pages: int, cls: type[_core.PageState] | None = None) -> _core.PageState: ...
@overload
def fresh_state(nr_pages: int, cls: type[RefPageState]) -> RefPageState: ...
def fresh_state(nr_pages: int,
                cls: type[_core.PageState] | type[RefPageState] | None = None
                ) -> _core.PageState | RefPageState:
    """A page state whose range [FREE_START_PFN, + nr_pages) is MOVABLE pageblocks
    of one zone, nothing free yet."""
    cls = cls or _core.PageState
    e = FREE_START_PFN + nr_pages
    p = cls(e, 9, 10, 4)
    p.set_pageblocks(FREE_START_PFN, e, 1, 2)
    return p


def free_cases(size: int) -> list[Case]:
    n = size >> 12
    cases: list[Case] = []
    for strategy in S.FREE_STRATEGIES:
        code = _core.FREE_STRATEGIES[strategy]

        def setup(n: int = n, code: int = code) -> tuple[Callable[[int, int, int], int],
                                                          int, int, int]:
            return (fresh_state(n).free_range, FREE_START_PFN, FREE_START_PFN + n, code)

        def run(free_range: Callable[[int, int, int], int], s: int, e: int, code: int) -> int:
            return free_range(s, e, code)

        def check(result: object, n: int = n) -> None:
            assert result == n
        # writes the buddy plane, and a head bit per chunk (a line per chunk at most)
        cases.append(Case("free", strategy, size, n, n // 8 + min(n // 8, n // 1024 * 64),
                          run, setup=setup, check=check))
    return cases


# ---------------------------------------------------------------- references

@functools.cache
def reference_time(path: CasePath, strategy: str, size: int) -> tuple[float, int]:
    """(seconds for the full size, pages the reference actually ran on); ``strategy``
    matters (and must be one of FREE_STRATEGIES) only for the ``free`` path."""
    pages = size >> 12
    ref_pages = min(pages, REF_PAGES["free" if path == "free" else
                                     "vmemmap" if path == "vmemmap" else "isolation"])
    if path == "free":
        free_strategy = S._choice(strategy, S.FREE_STRATEGIES, "free")

        def setup() -> tuple[RefPageState, S.FreeStrategy]:
            return (fresh_state(ref_pages, _refstate()), free_strategy)

        def run(p: RefPageState, strategy: S.FreeStrategy) -> None:
            S.ref_free_range(p, FREE_START_PFN, FREE_START_PFN + ref_pages, strategy)
        t = median_time(run, setup=setup, repeat=3, budget=5.0)
    else:
        w = workload(min(size, ref_pages << 12))
        p = w.planes
        n = w.nr_pages
        if path == "vmemmap":
            t = median_time(S.ref_vmemmap_per_section, p["vmemmap"], w.nr_sections,
                            w.pages_per_section, repeat=3, budget=5.0)
        elif path == "has_unmovable":
            t = median_time(S.ref_has_unmovable, p["reserved"], p["vmemmap"], p["unmovable"],
                            0, n, False, True, repeat=3, budget=5.0)
        else:
            t = median_time(S.ref_first_not_free, p["buddy"], p["vmemmap"], 0, n, True,
                            repeat=3, budget=5.0)
        ref_pages = n
    return t * pages / ref_pages, ref_pages


def _refstate() -> type[RefPageState]:
    return RefPageState


# ---------------------------------------------------------------- lifecycle

class LifecycleTimes(TypedDict):
    """Blocks added, seconds per phase, and (``rss=True``) the RSS in bytes after
    each phase, in this key order."""

    blocks: int
    rss_after_add: NotRequired[int]
    rss_all_online: NotRequired[int]
    rss_all_offline: NotRequired[int]
    add: float
    online: float
    offline: float
    remove: float
    total: float


class ChildLifecycle(LifecycleTimes):
    """What the lifecycle child process prints (RSS in bytes)."""

    rss_baseline: int
    rss_booted: int
    peak_rss: int
    size: int
    pages: int


class LifecycleRss(ChildLifecycle):
    """lifecycle_rss(): the child's figures and RSS bytes per simulated page."""

    peak_rss_per_page: float
    peak_rss_per_page_above_baseline: float
    online_rss_per_page_above_booted: float


class _RssSamples(TypedDict, total=False):
    rss_after_add: int
    rss_all_online: int
    rss_all_offline: int


def lifecycle(size: int | str, backend: Backend = "fast",
              progress: Callable[[int, int], None] | None = None,
              mode: LifecycleMode = "per_block") -> LifecycleTimes:
    """add, online every block online_movable, offline all, remove: seconds per
    phase (machine boot not timed)."""
    size = parse_size(size, "size") if isinstance(size, str) else size
    m = Machine(ARCH, boot_memory=BOOT, memmap_on_memory="y", backend=backend)
    return _lifecycle_on(m, size, progress, mode=mode)


def largest_add(max_memory: str | None = None) -> int:
    """Bytes that can be hot-added above boot memory: a "64 TiB machine" is
    the 4 GiB boot layout (which ends at 5 GiB) plus this much."""
    m = Machine(ARCH, boot_memory=BOOT, memmap_on_memory="y", max_memory=max_memory)
    return m.max_phys - default_add_start(m)


LIFECYCLE_MODES: Final[tuple[LifecycleMode, ...]] = get_args(LifecycleMode)


def _lifecycle_on(m: Machine, size: int, progress: Callable[[int, int], None] | None = None,
                  rss: bool = False, mode: LifecycleMode = "batched") -> LifecycleTimes:
    """The lifecycle on machine m.  ``batched`` onlines and offlines the whole
    range with Machine.online_blocks / offline_blocks (one pass over runs of
    blocks); ``per_block`` writes each memoryN/state in turn."""
    samples: _RssSamples = {}
    t0 = time.perf_counter()
    blocks = m.add(size=size)
    start = blocks[0] * m.block_size
    t1 = time.perf_counter()
    if rss:
        samples["rss_after_add"] = current_rss()
    nb = len(blocks)
    if mode == "batched":
        m.online_blocks(blocks, "online_movable")
    else:
        for i, b in enumerate(blocks):
            m.online(b, "online_movable")
            if progress is not None and i % 256 == 255:
                progress(i + 1, 2 * nb)
    t2 = time.perf_counter()
    if rss:
        samples["rss_all_online"] = current_rss()
    if mode == "batched":
        m.offline_blocks(blocks)
    else:
        for i, b in enumerate(blocks):
            m.offline(b)
            if progress is not None and i % 256 == 255:
                progress(nb + i + 1, 2 * nb)
    t3 = time.perf_counter()
    if rss:
        samples["rss_all_offline"] = current_rss()
    m.remove(start, size)
    t4 = time.perf_counter()
    return {"blocks": nb, **samples, "add": t1 - t0, "online": t2 - t1, "offline": t3 - t2,
            "remove": t4 - t3, "total": t4 - t0}


def peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM, which exec resets (ru_maxrss
    keeps the RSS the parent had when it forked the child)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _child_main(size: int, max_memory: str | None, mode: LifecycleMode = "batched",
                boot: str = BOOT, hypervisor: bool = True) -> None:
    # run in a fresh interpreter so that ru_maxrss is this lifecycle's own peak
    base = current_rss()
    m = Machine(ARCH, boot_memory=boot, memmap_on_memory="y", max_memory=max_memory,
                hypervisor=hypervisor)
    if size < 0:
        size = m.max_phys - default_add_start(m)
    booted = current_rss()
    r = _lifecycle_on(m, size, rss=True, mode=mode)
    out: ChildLifecycle = {
        **r, "rss_baseline": base, "rss_booted": booted,
        "peak_rss": peak_rss(),
        "size": size, "pages": size >> m.arch.page_shift}
    print(json.dumps(out))


def lifecycle_rss(size: int, max_memory: str | None = None, timeout: float = 3600,
                  mode: LifecycleMode = "batched", boot: str = BOOT,
                  hypervisor: bool = True) -> LifecycleRss:
    """The lifecycle in a child process: phase times, RSS after each phase and the
    peak RSS, per simulated page (``peak_rss_per_page``, and ``*_above_baseline``
    with the interpreter + numpy RSS taken off).  ``size`` -1 adds everything
    above boot memory up to ``max_memory``."""
    code = (f"from hotmem.bench import _child_main; "
            f"_child_main({size}, {max_memory!r}, {mode!r}, {boot!r}, {hypervisor!r})")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, check=True)
    r: ChildLifecycle = json.loads(res.stdout.strip().splitlines()[-1])
    pages = r["pages"]
    return {**r, "peak_rss_per_page": r["peak_rss"] / pages,
            "peak_rss_per_page_above_baseline": (r["peak_rss"] - r["rss_baseline"]) / pages,
            "online_rss_per_page_above_booted": (r["rss_all_online"] - r["rss_booted"]) / pages}


# the machines of ``hotmem bench --paths machines``: (max_memory, boot memory,
# hypervisor).  64 GiB of boot memory on bare metal gives x86's 2 GiB memory
# blocks (probe_memory_block_size), as a machine of petabytes would have; a VM
# with 4 GiB keeps 128 MiB blocks: 8,388,568 of them for 1 PiB.
BIG_MACHINES: Final = (("64T", "4G", True), ("1P", "64G", False), ("1P", "4G", True),
                       ("4P", "64G", False))


def machine_lifecycle(max_memory: str, boot: str, hypervisor: bool) -> LifecycleRss:
    """The lifecycle of everything above boot memory up to max_memory (x86_64,
    5-level paging reaches 4 PiB), in a child process."""
    return lifecycle_rss(-1, max_memory, boot=boot, hypervisor=hypervisor)


class RssPoint(TypedDict):
    """Memory of a machine with 16 TiB online movable as allocations spread."""

    pages_allocated: int
    sections_touched: int
    rss_above_online: int


def _child_rss_curve(online: str, points: list[int]) -> None:
    m = Machine(ARCH, boot_memory=BOOT, memmap_on_memory="y", max_memory="64T")
    blocks = m.add(size=online)
    m.online_blocks(blocks, "online_movable")
    pages = m.pages
    assert isinstance(pages, _core.PageState)
    base_chunks = pages.nr_chunks_with_bits()
    base = current_rss()
    out: list[RssPoint] = [{"pages_allocated": 0, "sections_touched": 0,
                            "rss_above_online": 0}]
    done = 0
    for i, n in enumerate(points):
        m.alloc(n - done, zone="Movable", placement="random", seed=i)
        done = n
        out.append({"pages_allocated": n,
                    "sections_touched": pages.nr_chunks_with_bits() - base_chunks,
                    "rss_above_online": current_rss() - base})
    # freed again, the sections fold back to descriptors and their words go
    m.free(kind="movable")
    out.append({"pages_allocated": 0, "sections_touched": pages.nr_chunks_with_bits() - base_chunks,
                "rss_above_online": current_rss() - base})
    print(json.dumps({"online": online, "rss_online": base, "curve": out}))


RSS_CURVE_POINTS: Final = (16, 256, 4096, 65536, 1 << 20)


def rss_curve(online: str = "16T", points: tuple[int, ...] = RSS_CURVE_POINTS,
              timeout: float = 3600) -> dict[str, Any]:
    """RSS of a machine with ``online`` online movable, in a child process, as
    movable pages are allocated at random over it (cumulative ``points``), and
    once they are all freed again: the RSS follows the sections the
    allocations touch, not the memory."""
    code = (f"from hotmem.bench import _child_rss_curve; "
            f"_child_rss_curve({online!r}, {list(points)!r})")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, check=True)
    r: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return r


@functools.cache
def lifecycle_reference_per_block(ref_size: str = REF_LIFECYCLE_SIZE) -> tuple[float, int]:
    """(seconds per block of the reference backend, blocks it ran on)."""
    r = lifecycle(ref_size, backend="reference")
    return r["total"] / r["blocks"], r["blocks"]


# ---------------------------------------------------------------- the table

@dataclass
class Row:
    path: str
    strategy: str
    size: str
    pages: int
    median_s: float
    ref_s: float
    ref_extrapolated_from_pages: int
    vs_ref: float
    bytes_touched: int
    bound_s: float
    vs_bound: float


def measure_case(c: Case, repeat: int) -> Row:
    if c.setup is None:
        result = c.run(*c.args)
        t = median_time(c.run, *c.args, repeat=repeat)
    else:
        result = c.run(*c.setup())
        t = median_time(c.run, setup=c.setup, repeat=repeat, budget=10.0)
    if c.check is not None:
        c.check(result)
    ref, ref_pages = reference_time(c.path, c.strategy if c.path == "free" else "", c.size)
    bound = bound_time(c.bytes_touched)
    return Row(c.path, c.strategy, fmt_size(c.size), c.pages, t, ref,
               0 if ref_pages == c.pages else ref_pages, ref / t, c.bytes_touched, bound,
               t / bound)


def cases_for(path: str, size: int) -> list[Case]:
    if path == "vmemmap":
        return vmemmap_cases(workload(size))
    if path == "isolation":
        return isolation_cases(workload(size))
    if path == "free":
        return free_cases(size)
    raise ValueError(path)


def lifecycle_row(size: int, repeat: int, progress: Callable[[int, int], None] | None = None,
                  mode: LifecycleMode = "batched") -> Row:
    times: list[float] = []
    for _ in range(max(1, repeat)):
        times.append(lifecycle(size, progress=progress, mode=mode)["total"])
        if sum(times) > 10:
            break
    t = statistics.median(times)
    per_block, ref_blocks = lifecycle_reference_per_block()
    blocks = size // (128 << 20)
    ref = per_block * blocks
    return Row("lifecycle", mode, fmt_size(size), size >> 12, t, ref,
               0 if ref_blocks == blocks else ref_blocks * 32768, ref / t, 0, float("nan"),
               float("nan"))


def format_table(rows: list[Row]) -> str:
    head = (f"{'path':<20}{'strategy':<18}{'size':>5}{'median':>11}{'vs ref':>11}"
            f"{'ref from':>10}{'touched':>10}{'vs bound':>10}")
    out = [head, "-" * len(head)]
    for r in rows:
        ref_from = "full" if not r.ref_extrapolated_from_pages else \
            fmt_size(r.ref_extrapolated_from_pages << 12)
        bound = "" if r.vs_bound != r.vs_bound else f"{r.vs_bound:.2f}x"
        touched = "" if not r.bytes_touched else fmt_bytes(r.bytes_touched)
        out.append(f"{r.path:<20}{r.strategy:<18}{r.size:>5}{fmt_time(r.median_s):>11}"
                   f"{r.vs_ref:>10.0f}x{ref_from:>10}{touched:>10}{bound:>10}")
    return "\n".join(out)


def format_machine(r: Mapping[str, Any]) -> str:
    """One line per big machine: lifecycle phases and peak RSS."""
    g = 1 << 30
    per_tib = (r["rss_all_online"] - r["rss_booted"]) / (r["size"] / (1 << 40)) / (1 << 20)
    return (f"machine {r['max_memory']} (boot {r['boot']}, {r['blocks']} blocks): add "
            f"{r['add']:.2f} s, online {r['online']:.2f} s, offline {r['offline']:.2f} s, "
            f"remove {r['remove']:.2f} s, total {r['total']:.2f} s; peak RSS "
            f"{r['peak_rss'] / g:.2f} GiB, all online {r['rss_all_online'] / g:.2f} GiB, "
            f"{per_tib:.2f} MiB per TiB online")


def format_rss(r: Mapping[str, Any]) -> str:
    """The RSS curve of rss_curve() as a table."""
    lines = [f"RSS of {r['online']} online movable as random allocations spread "
             f"(online: {r['rss_online'] >> 20} MiB):",
             f"{'pages':>10}{'sections touched':>18}{'RSS above online':>18}{'per section':>13}"]
    for p in r["curve"]:
        per = f"{p['rss_above_online'] / p['sections_touched'] / 1024:.1f}K" \
            if p["sections_touched"] else ""
        lines.append(f"{p['pages_allocated']:>10}{p['sections_touched']:>18}"
                     f"{fmt_bytes(max(p['rss_above_online'], 0)):>18}{per:>13}")
    return "\n".join(lines)


def fmt_time(t: float) -> str:
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.2f} ms"
    return f"{t * 1e6:.1f} us"


def fmt_bytes(n: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f}{unit}"
    return f"{n}B"


class _Progress:
    def __init__(self, label: str, enabled: bool):
        self.label, self.enabled, self.t0 = label, enabled, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self.enabled and time.monotonic() - self.t0 > 2.0:
            print(f"\r{self.label}: {done}/{total}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and time.monotonic() - self.t0 > 2.0:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hotmem bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1G,64G,1T",
                    help="hot-added sizes, comma separated (default 1G,64G,1T)")
    ap.add_argument("--paths", default=",".join(PATHS),
                    help=f"hot paths, comma separated (default {','.join(PATHS)})")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    ap.add_argument("--json", action="store_true", help="rows as JSON on stdout")
    args = ap.parse_args(argv)
    try:
        sizes = [parse_size(s.strip(), "size") for s in args.sizes.split(",") if s.strip()]
    except Exception as err:  # ConfigError with the offending value
        print(f"hotmem bench: {err}", file=sys.stderr)
        return 2
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    bad = [p for p in paths if p not in PATHS + EXTRA_PATHS]
    if bad or any(s <= 0 or s % (128 << 20) for s in sizes):
        print(f"hotmem bench: paths must be among {', '.join(PATHS)} and sizes multiples "
              "of 128M", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()
    rows: list[Row] = []
    notes: list[str] = []
    extra: dict[str, object] = {}
    for size in sizes:
        for path in paths:
            if path in EXTRA_PATHS:
                continue
            prog = _Progress(f"{path} {fmt_size(size)}", tty)
            if path == "lifecycle":
                by_mode = {mode: lifecycle_row(size, args.repeat, prog, mode)
                           for mode in LIFECYCLE_MODES}
                rows.extend(by_mode.values())
                notes.append(f"lifecycle {fmt_size(size)}: per_block / batched = "
                             f"{by_mode['per_block'].median_s / by_mode['batched'].median_s:.1f}x"
                             " (same run)")
                rss = lifecycle_rss(size)
                notes.append(f"lifecycle {fmt_size(size)}: peak RSS {rss['peak_rss'] >> 20} MiB, "
                             f"{rss['peak_rss_per_page_above_baseline']:.3f} byte per page "
                             "above the interpreter")
            else:
                cases = cases_for(path, size)
                for i, c in enumerate(cases):
                    prog(i, len(cases))
                    rows.append(measure_case(c, args.repeat))
            prog.close()
    machines: list[dict[str, Any]] = []
    curve: dict[str, Any] | None = None
    if "machines" in paths:
        machines = [dict(machine_lifecycle(*mc), max_memory=mc[0], boot=mc[1])
                    for mc in BIG_MACHINES]
        extra["machines"] = machines
    if "rss" in paths:
        curve = rss_curve()
        extra["rss"] = curve
    dram = dram_read_bandwidth()
    if args.json:
        print(json.dumps({"dram_read_bytes_per_s": dram,
                          "popcnt_instruction": _scan.popcnt_instruction(),
                          "rows": [asdict(r) for r in rows], **extra}, indent=1))
    else:
        if rows:
            print(format_table(rows))
        for n in notes:
            print(n)
        for mach in machines:
            print(format_machine(mach))
        if curve is not None:
            print(format_rss(curve))
        print(f"\nvs ref: times faster than the pure-Python reference (run at full size, or "
              f"at 'ref from' and scaled by pages / blocks).\nvs bound: time / a streaming "
              f"read of the bytes touched in the same process (1.00x = bandwidth limit); "
              f"DRAM read {dram / 1e9:.1f} GB/s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
