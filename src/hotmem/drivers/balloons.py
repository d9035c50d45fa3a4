"""Hypervisor balloons that hot-add memory: Hyper-V (drivers/hv/hv_balloon.c)
and Xen (drivers/xen/balloon.c).  Both add plain "System RAM" with
MHP_MERGE_RESOURCE, no memory group and never memmap on memory, and both own
an online_page_callback that keeps some pages PageOffline with a reference
they never drop, so a block holding such pages cannot be offlined (EBUSY from
scan_movable_pages).

``size`` of a ``resize`` is the memory the guest holds from the device's
point of view: the bytes of the region the host backs, less the pages the
balloon has taken back (inflated) from anywhere in the guest.  Below what it
holds, the balloon inflates by the difference; above, it first deflates (the
ballooned pages go back to the buddy), then the host backs more of the
region.  ``size`` is a whole number of pages, at most the region.

Inflation allocates as the drivers do, alloc_pages(GFP_HIGHUSER |
__GFP_NORETRY | __GFP_NOMEMALLOC): unmovable, from the kernel zones up to
ZONE_NORMAL (never ZONE_MOVABLE), the zonelist at the low then the min
watermark, failure instead of reclaim (page_alloc.alloc_noretry).  A
ballooned page is PageOffline with its reference (kpageflags: OFFLINE only;
from 5.1), not managed (adjust_managed_page_count(-1); Hyper-V from 5.11),
counted in NR_BALLOON_PAGES (6.15), and pins its memory block: offline is
EBUSY.

* Hyper-V: the host hot-adds a region in chunks of a memory block (6.12;
  128 MiB in 6.1) and backs only part of it: hv_online_page() onlines the
  backed pages, the rest stays PageOffline.  ``backed`` (bytes, from the
  region start) is what the host backs.  balloon_up() caps the request at
  si_mem_available() less compute_balloon_floor(), allocates 2 MiB blocks
  (order 9) while they come and at least 512 pages remain, then single pages
  until one fails, and reports what it got: the guest keeps that much
  (partial success, noted on the device).  Ballooning needs 4 KiB pages
  (ballooning_enabled(): EOPNOTSUPP otherwise).  balloon_down() frees the
  ranges the host names; hotmem returns the most recent ones first.
* Xen: reserve_additional_memory() adds the region; xen_online_page() puts
  every page on the balloon list (head first, so the highest pfn ends at the
  head); the balloon thread hands pages back from the head up to the target
  (increase_reservation) and inflates in batches of PAGE_SIZE / 8 pages
  (decrease_reservation, at most si_mem_available()); a failed allocation
  leaves the rest of the target pending (BP_EAGAIN, then BP_ECANCELED after
  max_retry_count = 4 retries that find the same state): the next resize
  tries again.  An online of a block wakes the thread to populate.

Allocations start from node 0 (the node of the CPU running the work).
"""
from __future__ import annotations

import numpy as np

from ..constants import MEM_ONLINE, MHP_MERGE_RESOURCE, P_OFFLINE, IntArray
from ..errors import ConfigError, HotplugError
from ..memory_hotplug import add_memory, default_add_start
from ..page_alloc import adjust_managed_page_count, alloc_noretry, nr_free_pages
from ..state import DeviceReport, MachineState
from ..units import parse_size
from ..views.meminfo import figures, totalreserve_pages
from .base import Device

PAGES_IN_2M = 512   # hv_balloon.c: the first alloc_unit, 2 MiB of 4 KiB pages


Runs = list[tuple[int, int]]
# a piece of the balloon list: a range of pfns (most are one) or an array
Segment = range | IntArray


def _runs(pfns: IntArray) -> Runs:
    """[start, end) runs of pfns that follow each other in the array."""
    if not len(pfns):
        return []
    breaks = np.flatnonzero(np.diff(pfns) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(pfns)]))
    return [(int(pfns[a]), int(pfns[b - 1]) + 1) for a, b in zip(starts, ends, strict=True)]


def _segment_runs(seg: Segment) -> Runs:
    """The pfns of one balloon segment as runs (a segment is most often one
    run, ascending or descending)."""
    n = len(seg)
    if not n:
        return []
    if isinstance(seg, range):
        lo, hi = min(seg[0], seg[-1]), max(seg[0], seg[-1])
        if abs(seg.step) == 1:
            return [(lo, hi + 1)]
        return [(p, p + 1) for p in sorted(seg)]
    lo, hi = int(seg[0]), int(seg[-1])
    if hi - lo == n - 1 and (n < 3 or int(seg[1]) == lo + 1):
        return [(lo, hi + 1)]
    if lo - hi == n - 1 and (n < 3 or int(seg[1]) == lo - 1):
        return [(hi, lo + 1)]
    return _runs(np.sort(seg))


def _merge(runs: Runs) -> Runs:
    """Sorted runs, adjacent ones joined."""
    out: Runs = []
    for s, e in sorted(runs):
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _per_zone(m: MachineState, runs: Runs) -> dict[int, int]:
    """How many pages of the (disjoint) runs each zone (by zid) holds."""
    pbo = m.arch.pageblock_order
    out: dict[int, int] = {}
    for s, e in runs:
        first, last = s >> pbo, (e - 1) >> pbo
        _, zn = m.pages.pageblock_bytes(first << pbo, (last + 1) << pbo)
        pages = np.full(last - first + 1, 1 << pbo, dtype=np.int64)
        pages[0] -= s - (first << pbo)
        pages[-1] -= ((last + 1) << pbo) - e
        for z1, n in enumerate(np.bincount(zn, weights=pages).tolist()):
            if n and z1:
                out[z1 - 1] = out.get(z1 - 1, 0) + int(n)
    return out


def to_balloon(m: MachineState, runs: Runs, managed: bool = True) -> None:
    """Allocated pages into the balloon: __SetPageOffline and (``managed``)
    adjust_managed_page_count(-1) each."""
    runs = _merge(runs)
    for s, e in runs:
        m.pages.set(P_OFFLINE, s, e)
    if managed:
        for zid, n in _per_zone(m, runs).items():
            adjust_managed_page_count(m, m.zones[zid], -n)


def from_balloon(m: MachineState, runs: Runs, managed: bool = True) -> None:
    """Pages out of the balloon to the buddy: __ClearPageOffline, then
    __free_page with (``managed``) adjust_managed_page_count(+1).  The buddy
    merges order-0 frees into the same blocks whatever their order, so each
    run is freed at once."""
    runs = _merge(runs)
    for s, e in runs:
        m.pages.clear(P_OFFLINE, s, e)
        m.pages.free_range(s, e)
    if managed:
        for zid, n in _per_zone(m, runs).items():
            adjust_managed_page_count(m, m.zones[zid], n)


def check_inflation_era(m: MachineState, name: str) -> None:
    """Both drivers mark inflated pages PageOffline from 5.1 ("hv_balloon:
    mark inflated pages PG_offline", "xen/balloon: mark inflated pages
    PG_offline"); before, they were plain allocated pages, which hotmem's
    page planes cannot tell from movable user pages."""
    if not m.kernel.at_least(5, 1):
        raise ConfigError(f"device {name}: balloon inflation is modelled from 5.1 (inflated "
                          f"pages PageOffline), not {m.kernel}")


class _Balloon(Device):
    keys = ("backed",)
    drops_offline_refs = False

    def configure(self, options: dict[str, object]) -> None:
        super().configure(options)
        self.backed = parse_size(options.get("backed", self.size), f"device {self.name}: backed")
        if self.backed > self.size:
            raise ConfigError(f"device {self.name}: backed ({self.backed:#x}) is larger than "
                              f"the region ({self.size:#x})")
        # the balloon, in segments of pfns; the driver takes pages back from
        # the end of the last segment first
        self.balloon: list[Segment] = []

    def _chunk(self, m: MachineState) -> int:
        return m.block_size

    def attach(self, m: MachineState) -> list[int]:
        if self.start is None:
            self.start = default_add_start(m)
        chunk = self._chunk(m)
        if self.start % m.block_size or chunk % m.block_size:
            raise HotplugError("EINVAL", f"device {self.name}: the region is not memory block "
                               "aligned")
        m.devices[self.name] = self
        added: list[int] = []
        end = self.start + -(-self.size // chunk) * chunk
        for base in range(self.start, end, chunk):
            try:
                blocks = add_memory(m, base, chunk, self.nid, MHP_MERGE_RESOURCE, self.driver,
                                    self.static_group(m, base, chunk))
            except HotplugError as err:
                self.notes.append(f"hot-add at {base:#x} failed: {err}; no more hot-add")
                break
            added += blocks
        if not added:
            m.devices.pop(self.name, None)
            raise HotplugError("ENOMEM", f"device {self.name}: nothing could be hot-added")
        self.attached = True
        return added

    def blocks(self, m: MachineState) -> list[int]:
        # one memory group per add_memory() call (no group of the driver's own)
        gids = [g.gid for g in m.groups.values() if g.device is self]
        present = (m.blk_state != 0) & np.isin(m.blk_group, gids)
        return [int(b) for b in np.flatnonzero(present)]

    def _target_pages(self, m: MachineState, size: int) -> int:
        """The pages a resize to ``size`` asks for (checked before any change)."""
        if size % m.arch.page_size:
            raise ConfigError(f"device {self.name}: size ({size:#x}) is not a whole number of "
                              f"{m.arch.page_size >> 10} KiB pages")
        if size > self.size:
            raise HotplugError("EINVAL", f"device {self.name}: {size:#x} is beyond the region")
        return size >> m.arch.page_shift

    def nr_ballooned(self) -> int:
        return sum(len(s) for s in self.balloon)

    def ballooned_pfns(self) -> IntArray:
        return (np.concatenate([np.asarray(seg, dtype=np.int64) for seg in self.balloon])
                if self.balloon else np.zeros(0, np.int64))

    def nr_balloon_pages(self, m: MachineState, nid: int | None = None) -> int:
        """This balloon's share of NR_BALLOON_PAGES (of node ``nid``, or all)."""
        if nid is None:
            return self.nr_ballooned()
        runs = _merge([r for seg in self.balloon for r in _segment_runs(seg)])
        return sum(n for zid, n in _per_zone(m, runs).items() if m.zones[zid].nid == nid)

    def held_pages(self, m: MachineState) -> int:
        """What ``size`` of a resize means, in pages."""
        return (self.backed >> m.arch.page_shift) - self.nr_ballooned()

    def detach(self, m: MachineState) -> list[int]:
        raise HotplugError("EINVAL", f"device {self.name}: the {self.driver} driver never "
                           "hot-removes memory")

    def report(self, m: MachineState) -> DeviceReport:
        rep = super().report(m)
        rep["backed_bytes"] = self.backed
        rep["ballooned_pages"] = self.nr_ballooned()
        rep["held_bytes"] = self.held_pages(m) << m.arch.page_shift
        return rep


class HvBalloon(_Balloon):
    """Hyper-V dynamic memory: hot-add and balloon."""

    driver = "hv-balloon"

    def _chunk(self, m: MachineState) -> int:
        # ha_pages_in_chunk: the memory block size (6.12), HA_CHUNK = 128 MiB before
        return m.block_size if m.kernel.at_least(6, 12) else 128 << 20

    def attach(self, m: MachineState) -> list[int]:
        # hot_add_enabled(): no hot-add on ARM64 ("Drivers: hv: balloon:
        # Disable balloon and hot-add accordingly", 5.18)
        if m.arch.name.startswith("arm64") and m.kernel.at_least(5, 18):
            raise HotplugError("EOPNOTSUPP", f"device {self.name}: hv_balloon does not hot-add "
                               "memory on ARM64 (hot_add_enabled())")
        return super().attach(m)

    def _managed(self, m: MachineState) -> bool:
        # "hv_balloon: do adjust_managed_page_count() when ballooning/un-ballooning"
        # (posted 2020-12, taken as 5.11)
        return m.kernel.at_least(5, 11)

    def resize(self, m: MachineState, size: int) -> list[int]:
        want = self._target_pages(m, size)
        held = self.held_pages(m)
        if want < held:
            self.balloon_up(m, held - want)
            return []
        give = min(want - held, self.nr_ballooned())
        if give:
            self.balloon_down(m, give)
        if want - held > give:
            self._back(m, size + (self.nr_ballooned() << m.arch.page_shift))
        return []

    def _back(self, m: MachineState, backed: int) -> None:
        """The host backs the region up to ``backed``: hv_bring_pgs_online()
        of the newly covered pages of online blocks."""
        assert self.start is not None
        ps = m.arch.page_shift
        s, e = (self.start + self.backed) >> ps, (self.start + backed) >> ps
        self.backed = backed
        for blk in range(s // m.pages_per_block, -(-e // m.pages_per_block)):
            if m.blk_state[blk] != MEM_ONLINE:
                continue
            bs, be = m.block_range(blk)
            lo, hi = max(bs, s), min(be, e)
            if lo < hi:
                m.pages.clear(P_OFFLINE, lo, hi)
                # hv_page_online_one(): adjust_managed_page_count() leaves the
                # watermarks as the last online / offline set them
                adjust_managed_page_count(m, m.zones[int(m.blk_zone[blk])],
                                          m.pages.free_range(lo, hi))

    def balloon_up(self, m: MachineState, num: int) -> int:
        """balloon_up() of ``num`` pages; returns the pages ballooned."""
        check_inflation_era(m, self.name)
        if m.arch.page_size != 4096:
            # ballooning_enabled() (5.18): the host is told not to balloon
            raise HotplugError("EOPNOTSUPP", f"device {self.name}: hv_balloon does not "
                               "balloon with pages other than 4 KiB (ballooning_enabled())")
        asked = num
        avail = figures(m)["MemAvailable"]
        floor = compute_balloon_floor(m.totalram_pages())
        why = ""
        if avail < num or avail - num < floor:
            why = "not enough memory" if avail < num else "balloon floor reached"
            num = max(avail - floor, 0)
        got: list[Segment] = []
        # alloc_unit 512 while 2 MiB blocks come and 512 pages remain, then 1
        heads = alloc_noretry(m, num // PAGES_IN_2M, 9, 0)
        got += [range(h, h + PAGES_IN_2M) for h in heads.tolist()]
        rest = num - PAGES_IN_2M * len(heads)
        if rest:
            singles = alloc_noretry(m, rest, 0, 0)
            got += [range(p, p + 1) for p in singles.tolist()]
            if len(singles) < rest:
                why = why or "allocation failed (__GFP_NORETRY)"
        done = sum(len(r) for r in got)
        if got:
            to_balloon(m, [r for seg in got for r in _segment_runs(seg)], self._managed(m))
            self.balloon += got
        if done < asked:
            self.notes.append(f"balloon_up: the host asked for {asked} pages, {done} "
                              f"ballooned ({why}: MemAvailable {avail}, floor {floor})")
        return done

    def balloon_down(self, m: MachineState, n: int) -> None:
        """balloon_down() of ``n`` pages: free_balloon_pages() of the most
        recently ballooned ranges."""
        out: list[Segment] = []
        while n:
            last = self.balloon[-1]
            k = min(n, len(last))
            out.append(last[len(last) - k:])
            if k == len(last):
                self.balloon.pop()
            else:
                self.balloon[-1] = last[:len(last) - k]
            n -= k
        from_balloon(m, [r for seg in out for r in _segment_runs(seg)], self._managed(m))

    def online_split(self, m: MachineState, blk: int, start: int,
                     end: int) -> tuple[list[tuple[int, int]], bool] | None:
        # hv_online_page(): the backed part goes to the buddy
        assert self.start is not None
        limit = (self.start + self.backed) >> m.arch.page_shift
        if limit >= end:
            return None
        return ([(start, limit)] if limit > start else []), False


def compute_balloon_floor(totalram: int) -> int:
    """compute_balloon_floor() (4 KiB pages): the pages Hyper-V never balloons."""
    mb = 1 << 8
    if totalram < 128 * mb:
        return 8 * mb + (totalram >> 1)
    if totalram < 512 * mb:
        return 40 * mb + (totalram >> 2)
    if totalram < 2048 * mb:
        return 104 * mb + (totalram >> 3)
    if totalram < 8192 * mb:
        return 232 * mb + (totalram >> 4)
    return 488 * mb + (totalram >> 5)


class XenBalloon(_Balloon):
    """Xen balloon memory hotplug."""

    driver = "xen-balloon"

    def configure(self, options: dict[str, object]) -> None:
        super().configure(options)
        # balloon_stats.target_pages and current_pages, counted from the
        # device's attach: only increase/decrease_reservation move current
        # (an offline or online of a block does not)
        self.target = 0
        self.current = 0

    def _chunk(self, m: MachineState) -> int:
        # reserve_additional_memory(): the whole credit, section rounded; add_memory
        # still wants it memory block aligned
        return -(-self.size // m.block_size) * m.block_size

    def attach(self, m: MachineState) -> list[int]:
        self.target = self.backed >> m.arch.page_shift
        self.backed = 0
        blocks = super().attach(m)
        self.balloon_thread(m)
        return blocks

    def online_split(self, m: MachineState, blk: int, start: int,
                     end: int) -> tuple[list[tuple[int, int]], bool] | None:
        # xen_online_page(): balloon_append() of every page in pfn order, each
        # at the list head
        self.balloon.append(range(start, end))
        return [], False

    def block_online(self, m: MachineState, blk: int) -> None:
        # xen_memory_notifier(): MEM_ONLINE wakes the balloon thread (which,
        # during attach, is itself busy adding the memory); it populates the
        # new pages (BP_WAIT).  An inflation that failed is not retried: its
        # retries end in BP_ECANCELED, which waits for a new target.
        if self.attached and self.target > self.held_pages(m):
            self.balloon_thread(m)

    def _region_pages(self, m: MachineState) -> int:
        """Pages of the hot-added region in the balloon."""
        assert self.start is not None
        s = self.start >> m.arch.page_shift
        e = s + (self._chunk(m) >> m.arch.page_shift)
        return sum(max(0, min(hi, e) - max(lo, s))
                   for seg in self.balloon for lo, hi in _segment_runs(seg))

    def held_pages(self, m: MachineState) -> int:
        return self.current

    def resize(self, m: MachineState, size: int) -> list[int]:
        self.target = self._target_pages(m, size)
        self.balloon_thread(m)
        return []

    def balloon_thread(self, m: MachineState) -> None:
        """One run of balloon_thread() towards the target: increase_reservation()
        from the list head, or decrease_reservation() of at most
        si_mem_available() pages; what is left stays pending."""
        credit = self.target - self.held_pages(m)
        if credit > 0:
            self._increase(m, min(credit, self.nr_ballooned()))
        elif credit < 0:
            check_inflation_era(m, self.name)
            self._decrease(m, -credit)
        left = self.target - self.held_pages(m)
        if left < 0:
            self.notes.append(f"balloon target {self.target} pages not reached: {-left} pages "
                              "still to balloon (BP_EAGAIN, then BP_ECANCELED after "
                              "max_retry_count 4 retries: tried again at the next resize)")

    def report(self, m: MachineState) -> DeviceReport:
        rep = super().report(m)
        # the region's online pages the balloon has handed back
        online = sum(1 for b in self.blocks(m) if m.blk_state[b] == MEM_ONLINE)
        rep["backed_bytes"] = (online * m.pages_per_block - self._region_pages(m)) \
            << m.arch.page_shift
        return rep

    def _increase(self, m: MachineState, n: int) -> None:
        out: list[Segment] = []
        while n:
            last = self.balloon[-1]
            k = min(n, len(last))
            # balloon_retrieve(): the head first, i.e. the end of the segment
            out.append(last[len(last) - k:][::-1])
            if k == len(last):
                self.balloon.pop()
            else:
                self.balloon[-1] = last[:len(last) - k]
            n -= k
        if out:
            from_balloon(m, [r for seg in out for r in _segment_runs(seg)])
            self.current += sum(len(o) for o in out)

    def _decrease(self, m: MachineState, n: int) -> None:
        # n_pages = min(-credit, si_mem_available()) per pass, passes of
        # ARRAY_SIZE(frame_list); si_mem_available() falls by each page taken,
        # so the passes end after it at most
        avail = max(nr_free_pages(m) - totalreserve_pages(m), 0)
        pfns = alloc_noretry(m, min(n, avail), 0, 0)
        if not len(pfns):
            return
        to_balloon(m, _runs(pfns))
        self.current -= len(pfns)
        batch = m.arch.page_size // 8
        # breaks[j]: how many of pfns[1..j] do not follow the pfn before them
        breaks = np.concatenate(([0], np.cumsum(np.diff(pfns) != 1)))
        for i in range(0, len(pfns), batch):
            # list_add() onto a private list, then balloon_append() of each:
            # the batch lands at the head in allocation order
            j = min(i + batch, len(pfns))
            if breaks[j - 1] == breaks[i]:
                self.balloon.append(range(int(pfns[j - 1]), int(pfns[i]) - 1, -1))
            else:
                self.balloon.append(pfns[i:j][::-1].copy())
