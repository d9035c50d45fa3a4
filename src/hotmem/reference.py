"""A slow, obviously correct pure-Python page state: the oracle for the compiled core.

Same interface as ``hotmem._core.PageState``, but every free block is an entry
``heads[pfn] = order`` and every page property a Python set, and every loop goes
page by page.  Use it only for small machines.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .constants import (
    FREE_STRATEGIES,
    MIGRATE_HIGHATOMIC,
    MIGRATE_TYPES,
    P_BUDDY,
    P_DIRTY,
    P_HEAD,
    P_OFFLINE,
    P_RESERVED,
    P_UNMOVABLE,
    P_VMEMMAP,
    PB_ISOLATE,
    PLANES,
)
from .constants import MIGRATE_ISOLATE as ISOLATE

N_MIGRATE_TYPES = MIGRATE_TYPES
FREE_CTZ, FREE_GET_ORDER, FREE_GET_ORDER_ALIGNED, FREE_PAGE = (
    FREE_STRATEGIES[n] for n in ("ctz", "get_order", "get_order_aligned", "page"))


def _ctz(x: int) -> int:
    return 63 if x == 0 else (x & -x).bit_length() - 1


def _get_order(n: int) -> int:
    return 0 if n <= 1 else (n - 1).bit_length()


class RefPageState:
    """Page state as Python sets and dicts; mirrors PageState method by method."""

    def __init__(self, nr_pfns: int, pageblock_order: int, max_order: int,
                 n_zids: int) -> None:
        self.nr_pfns = nr_pfns
        self.pageblock_order = pageblock_order
        self.max_order = max_order
        self.n_zids = n_zids
        # the planes other than the buddy's, which heads and buddy hold
        self.flags: dict[int, set[int]] = {
            p: set() for p in (P_VMEMMAP, P_RESERVED, P_UNMOVABLE, P_OFFLINE, P_DIRTY)}
        self.heads: dict[int, int] = {}
        self.buddy: set[int] = set()
        self.pb_mt: dict[int, int] = {}
        self.pb_zone: dict[int, int] = {}
        self.nr_free: npt.NDArray[np.int64] = np.zeros(
            (n_zids, N_MIGRATE_TYPES, max_order + 1), dtype=np.int64)

    # ---- helpers

    def _pb(self, pfn: int) -> int:
        return pfn >> self.pageblock_order

    def list_of(self, pfn: int) -> int:
        b = self.pb_mt.get(self._pb(pfn), 0)
        return ISOLATE if b & PB_ISOLATE else b & 7

    def zone_of(self, pfn: int) -> int:
        return self.pb_zone.get(self._pb(pfn), 0) - 1

    def _plane(self, plane: int) -> set[int]:
        if plane == P_BUDDY:
            return self.buddy
        if plane == P_HEAD:
            return set(self.heads)
        return self.flags[plane]

    def _check(self, s: int, e: int) -> None:
        if s < 0 or e > self.nr_pfns or s > e:
            raise IndexError(f"pfn range [{s:#x}, {e:#x}) outside [0, {self.nr_pfns:#x})")

    # ---- planes

    def set(self, plane: int, s: int, e: int) -> None:
        self._check(s, e)
        if plane in (P_BUDDY, P_HEAD):
            raise ValueError("the buddy planes change only through the allocator")
        self.flags[plane].update(range(s, e))

    def clear(self, plane: int, s: int, e: int) -> None:
        self._check(s, e)
        if plane in (P_BUDDY, P_HEAD):
            raise ValueError("the buddy planes change only through the allocator")
        self.flags[plane].difference_update(range(s, e))

    def count(self, plane: int, s: int, e: int) -> int:
        self._check(s, e)
        return sum(1 for pfn in range(s, e) if pfn in self._plane(plane))

    def test(self, plane: int, pfn: int) -> bool:
        return pfn in self._plane(plane)

    def find_set(self, plane: int, s: int, e: int) -> int:
        self._check(s, e)
        pl = self._plane(plane)
        return next((pfn for pfn in range(s, e) if pfn in pl), -1)

    def find_clear(self, plane: int, s: int, e: int) -> int:
        self._check(s, e)
        pl = self._plane(plane)
        return next((pfn for pfn in range(s, e) if pfn not in pl), -1)

    def words(self, plane: int, s: int, e: int) -> npt.NDArray[np.uint64]:
        self._check(s, e)
        bits = np.zeros(e - s, dtype=np.uint8)
        for pfn in self._plane(plane):
            if s <= pfn < e:
                bits[pfn - s] = 1
        return np.packbits(bits, bitorder="little").view(np.uint64).copy()

    def release(self, s: int, e: int, planes: list[int] | None = None) -> None:
        self._check(s, e)
        for plane in (PLANES.values() if planes is None else planes):
            if plane == P_BUDDY:
                self.buddy.difference_update(range(s, e))
            elif plane == P_HEAD:
                for pfn in [h for h in self.heads if s <= h < e]:
                    del self.heads[pfn]
            else:
                self.flags[plane].difference_update(range(s, e))
        if planes is None:
            for pb in range(self._pb(s), self._pb(e)):
                self.pb_mt.pop(pb, None)
                self.pb_zone.pop(pb, None)

    # ---- pageblocks

    def set_pageblocks(self, s: int, e: int, migratetype: int, zid: int) -> None:
        for pb in range(self._pb(s), self._pb(e)):
            self.pb_mt[pb] = migratetype
            self.pb_zone[pb] = zid + 1

    def pageblock(self, pfn: int) -> tuple[int, bool, int]:
        b = self.pb_mt.get(self._pb(pfn), 0)
        return (b & 7, bool(b & PB_ISOLATE), self.zone_of(pfn))

    def pageblock_bytes(self, s: int,
                        e: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
        a = self._pb(s)
        b = (e + (1 << self.pageblock_order) - 1) >> self.pageblock_order
        mt = np.array([self.pb_mt.get(pb, 0) for pb in range(a, b)], dtype=np.uint8)
        zn = np.array([self.pb_zone.get(pb, 0) for pb in range(a, b)], dtype=np.uint8)
        return mt, zn

    def _move_pageblock(self, pb: int, new_list: int) -> None:
        s = pb << self.pageblock_order
        old = self.list_of(s)
        if old == new_list:
            return
        for h, o in self.heads.items():
            if self._pb(h) == pb:
                self.nr_free[self.zone_of(h), old, o] -= 1
                self.nr_free[self.zone_of(h), new_list, o] += 1

    def set_migratetype(self, s: int, e: int, migratetype: int) -> None:
        self.split_at(s)
        self.split_at(e)
        for pb in range(self._pb(s), self._pb(e)):
            b = self.pb_mt.get(pb, 0)
            if not b & PB_ISOLATE:
                self._move_pageblock(pb, migratetype)
            self.pb_mt[pb] = (b & PB_ISOLATE) | migratetype

    def zone_runs(self, zid: int, s: int, e: int) -> list[tuple[int, int]]:
        pbo = self.pageblock_order
        ok = [self.pb_zone.get(pb, 0) == zid + 1 and not self.pb_mt.get(pb, 0) & PB_ISOLATE
              for pb in range(s >> pbo, e >> pbo)]
        out: list[tuple[int, int]] = []
        for i, good in enumerate(ok):
            pfn = s + (i << pbo)
            if good and (not out or out[-1][1] != pfn):
                out.append((pfn, pfn + (1 << pbo)))
            elif good:
                out[-1] = (out[-1][0], pfn + (1 << pbo))
        return out

    def isolate(self, s: int, e: int) -> int:
        self.split_at(s)
        self.split_at(e)
        n = 0
        for pb in range(self._pb(s), self._pb(e)):
            b = self.pb_mt.get(pb, 0)
            if b & PB_ISOLATE:
                continue
            self._move_pageblock(pb, ISOLATE)
            self.pb_mt[pb] = b | PB_ISOLATE
            n += 1
        return n

    def unisolate(self, s: int, e: int) -> int:
        n = 0
        for pb in range(self._pb(s), self._pb(e)):
            b = self.pb_mt.get(pb, 0)
            if not b & PB_ISOLATE:
                continue
            self._move_pageblock(pb, b & 7)
            self.pb_mt[pb] = b & ~PB_ISOLATE
            n += 1
        for h in sorted(h for h in self.heads if s <= h < e):
            if h not in self.heads:
                continue
            o = self.heads[h]
            if self.pageblock_order <= o < self.max_order:
                self.del_block(h, o)
                self.free_one(h, o)
        return n

    # ---- buddy

    def add_block(self, pfn: int, order: int) -> None:
        self.buddy.update(range(pfn, pfn + (1 << order)))
        self.heads[pfn] = order
        self.nr_free[self.zone_of(pfn), self.list_of(pfn), order] += 1

    def del_block(self, pfn: int, order: int) -> None:
        del self.heads[pfn]
        self.nr_free[self.zone_of(pfn), self.list_of(pfn), order] -= 1

    def free_one(self, pfn: int, order: int) -> None:
        zone, mt = self.zone_of(pfn), self.list_of(pfn)
        self.buddy.update(range(pfn, pfn + (1 << order)))
        while order < self.max_order:
            size = 1 << order
            buddy = pfn ^ size
            if buddy < 0 or buddy + size > self.nr_pfns:
                break
            if self.heads.get(buddy) != order or self.zone_of(buddy) != zone:
                break
            bmt = mt
            if order >= self.pageblock_order:
                bmt = self.list_of(buddy)
                if bmt != mt and (mt >= MIGRATE_HIGHATOMIC or bmt >= MIGRATE_HIGHATOMIC):
                    break
            self.del_block(buddy, order)
            if bmt != mt:
                for pb in range(self._pb(buddy), self._pb(buddy + size)):
                    self.pb_mt[pb] = (self.pb_mt.get(pb, 0) & PB_ISOLATE) | mt
            pfn &= buddy
            order += 1
        self.heads[pfn] = order
        self.nr_free[zone, mt, order] += 1

    def insert_natural(self, s: int, e: int) -> None:
        while s < e:
            o = min(_ctz(s), self.max_order)
            while s + (1 << o) > e:
                o -= 1
            self.add_block(s, o)
            s += 1 << o

    def head_containing(self, pfn: int) -> int:
        if pfn not in self.buddy:
            return -1
        for h in range(pfn, max(-1, pfn - (1 << self.max_order) - 1), -1):
            if h in self.heads:
                return h
        return -1

    def split_at(self, pfn: int) -> None:
        h = self.head_containing(pfn)
        if h < 0 or h == pfn:
            return
        o = self.heads[h]
        if h + (1 << o) <= pfn:
            return
        self.del_block(h, o)
        self.insert_natural(h, pfn)
        self.insert_natural(pfn, h + (1 << o))

    def head_order_of(self, pfn: int) -> int:
        return self.heads.get(pfn, -1)

    def free_range(self, s: int, e: int, strategy: int = FREE_CTZ,
                   misaligned: list[tuple[int, int]] | None = None) -> int:
        pfn, freed = s, 0
        while pfn < e:
            if strategy == FREE_PAGE:
                order = 0
            elif strategy == FREE_CTZ:
                order = min(_ctz(pfn), self.max_order)
                while pfn + (1 << order) > e:
                    order -= 1
            else:
                order = min(_get_order(e - pfn), self.max_order)
                if strategy == FREE_GET_ORDER_ALIGNED:
                    while pfn & ((1 << order) - 1) or pfn + (1 << order) > e:
                        order -= 1
            size = 1 << order
            aligned = pfn & (size - 1) == 0
            if not aligned and misaligned is not None:
                misaligned.append((pfn, order))
            if pfn + size > e:
                if misaligned is not None:
                    misaligned.append((pfn, order))
                self.insert_natural(pfn, e)
                freed += e - pfn
                break
            if aligned:
                self.free_one(pfn, order)
            else:
                self.add_block(pfn, order)
            freed += size
            pfn += size
        return freed

    def online_blocks(self, start: int, n: int, ppb: int, nr_vmemmap: int, zid: int,
                      strategy: int = FREE_CTZ) -> int:
        freed = 0
        for b in range(n):
            s = start + b * ppb
            self.set_pageblocks(s, s + nr_vmemmap, 0, zid)
            self.set_pageblocks(s + nr_vmemmap, s + ppb, 1, zid)
            self.flags[P_VMEMMAP].update(range(s, s + nr_vmemmap))
            freed += self.free_range(s + nr_vmemmap, s + ppb, strategy)
        return freed

    def offline_blocks(self, start: int, n: int, ppb: int, nr_vmemmap: int) -> int:
        removed = 0
        for b in range(n):
            s = start + b * ppb
            removed += self.remove_free_range(s + nr_vmemmap, s + ppb)
            self.flags[P_VMEMMAP].difference_update(range(s, s + nr_vmemmap))
        self.release(start, start + n * ppb)
        return removed

    def find_zone_pageblock(self, zid: int, s: int, e: int, reverse: bool) -> int:
        pbs = range(self._pb(s), (e + (1 << self.pageblock_order) - 1) >> self.pageblock_order)
        for pb in (reversed(pbs) if reverse else pbs):
            if self.pb_zone.get(pb, 0) == zid + 1:
                return pb << self.pageblock_order
        return -1

    def free_pages(self, pfns: npt.NDArray[np.int64]) -> None:
        pfn_list = [int(p) for p in pfns]
        for pfn in pfn_list:
            self._check(pfn, pfn + 1)
        for pfn in pfn_list:
            self.flags[P_UNMOVABLE].discard(pfn)
            self.free_one(pfn, 0)

    def take_range(self, s: int, e: int) -> None:
        if s >= e:
            return
        if any(pfn not in self.buddy for pfn in range(s, e)):
            raise ValueError(f"take_range: pfns [{s:#x}, {e:#x}) are not all free")
        self.split_at(s)
        self.split_at(e)
        for h in [h for h in self.heads if s <= h < e]:
            self.del_block(h, self.heads[h])
        self.buddy.difference_update(range(s, e))

    def take_pages(self, pfns: npt.NDArray[np.int64]) -> None:
        for pfn in pfns:
            self.take_range(int(pfn), int(pfn) + 1)

    def remove_free_range(self, s: int, e: int) -> int:
        self.split_at(s)
        self.split_at(e)
        n = sum(1 for pfn in range(s, e) if pfn in self.buddy)
        for h in [h for h in self.heads if s <= h < e]:
            self.del_block(h, self.heads[h])
        self.buddy.difference_update(range(s, e))
        return n

    # ---- scans

    def has_unmovable(self, s: int, e: int, movable_zone: bool, skip_vmemmap: bool) -> int:
        for pfn in range(s, e):
            if skip_vmemmap and pfn in self.flags[P_VMEMMAP]:
                continue
            if pfn in self.flags[P_RESERVED]:
                return pfn
            if not movable_zone and pfn in self.flags[P_UNMOVABLE]:
                return pfn
        return -1

    def first_not_free(self, s: int, e: int, skip_vmemmap: bool,
                       skip_offline: bool = False) -> int:
        for pfn in range(s, e):
            if pfn in self.buddy or (skip_vmemmap and pfn in self.flags[P_VMEMMAP]):
                continue
            if skip_offline and pfn in self.flags[P_OFFLINE]:
                continue
            return pfn
        return -1

    def first_not_isolated(self, s: int, e: int) -> int:
        for pfn in range(s, e):
            if not self.pb_mt.get(self._pb(pfn), 0) & PB_ISOLATE:
                return pfn
        return -1

    def allocated_pfns(self, s: int, e: int, unmovable: bool) -> npt.NDArray[np.int64]:
        if unmovable:
            out = [p for p in range(s, e) if p in self.flags[P_UNMOVABLE]]
        else:
            taken = (self.flags[P_VMEMMAP] | self.flags[P_RESERVED] | self.flags[P_UNMOVABLE]
                     | self.flags[P_OFFLINE])
            out = [p for p in range(s, e) if p not in self.buddy and p not in taken]
        return np.array(out, dtype=np.int64)

    def first_free(self, s: int, e: int, n: int) -> npt.NDArray[np.int64]:
        out: list[int] = []
        for pfn in range(s, e):
            if len(out) >= n:
                break
            if pfn in self.buddy:
                out.append(pfn)
        return np.array(out, dtype=np.int64)

    def free_by_rank(self, s: int, e: int,
                     ranks: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        free = [pfn for pfn in range(s, e) if pfn in self.buddy]
        if len(ranks) and int(ranks[-1]) >= len(free):
            raise ValueError("free_by_rank: rank beyond the free pages of the range")
        return np.array([free[int(r)] for r in ranks], dtype=np.int64)

    def first_free_block(self, s: int, e: int, order: int) -> int:
        self._check(s, e)
        return min((h for h, o in self.heads.items() if s <= h < e and o == order), default=-1)

    def free_blocks(self, s: int,
                    e: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        hs = sorted(h for h in self.heads if s <= h < e)
        return (np.array(hs, dtype=np.int64),
                np.array([self.heads[h] for h in hs], dtype=np.int8))
