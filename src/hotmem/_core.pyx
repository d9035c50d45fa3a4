# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled core of hotmem: per-page bit-planes and the buddy allocator's hot loops.

Per-page state lives in bit-planes of 64-bit words (one bit per pfn), mapped with
``MAP_NORESERVE`` over the whole physical address space of the simulated machine:
like SPARSEMEM, an absent or offline range costs no memory until it is written,
and ``release`` hands fully cleared ranges back to the host.  Per pageblock there is
one byte of migratetype (plus the isolate bit) and one byte of zone id.

A free buddy block of order ``o`` at ``pfn`` is: P_HEAD set at ``pfn`` and P_BUDDY set
on all ``2**o`` pages.  Its order is not stored: the block ends where the next head
or the next non-free page begins, so ``head_order`` recovers it with a word scan.
Which free list a block is on follows its first pageblock (MIGRATE_ISOLATE when
that pageblock is isolated), as in kernels since 6.10, where the free list always
matches the pageblock.  ``nr_free[zid, migratetype, order]`` counts the blocks.

Everything here is policy-free: the Python layer decides zones, eras and errors.
"""
import numpy as np
from libc.stdint cimport uint64_t, int64_t, uint8_t, int8_t
from libc.string cimport memset
from posix.mman cimport (mmap, munmap, madvise, PROT_READ, PROT_WRITE, MAP_PRIVATE,
                         MAP_ANONYMOUS, MAP_NORESERVE, MAP_FAILED, MADV_DONTNEED)

from hotmem._bits cimport (ALL_ONES, __builtin_clzll, __builtin_ctzll, __builtin_popcountll,
                           clear_bits, count_bits, ctz64,
                           find_next_set, find_next_zero, find_prev_set, get_order, hi_mask,
                           lo_mask, set_bits, test_bit)

PLANES = {"vmemmap": P_VMEMMAP, "reserved": P_RESERVED, "buddy": P_BUDDY,
          "head": P_HEAD, "unmovable": P_UNMOVABLE, "offline": P_OFFLINE, "dirty": P_DIRTY}
N_MIGRATE_TYPES = MIGRATE_TYPES
ISOLATE = MIGRATE_ISOLATE
FREE_STRATEGIES = {"ctz": FREE_CTZ, "get_order": FREE_GET_ORDER,
                   "get_order_aligned": FREE_GET_ORDER_ALIGNED, "page": FREE_PAGE}



cdef void* _map(size_t nbytes) except NULL:
    cdef void* p = mmap(NULL, nbytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    if p == MAP_FAILED:
        raise MemoryError(f"cannot reserve {nbytes} bytes of address space")
    return p


cdef void _release_bytes(uint8_t* base, size_t start, size_t end) noexcept nogil:
    # zero [start, end) of a mapping; whole host pages go back to the host
    cdef size_t pstart = (start + 4095) & ~(<size_t>4095)
    cdef size_t pend = end & ~(<size_t>4095)
    if pend > pstart:
        memset(base + start, 0, pstart - start)
        madvise(base + pstart, pend - pstart, MADV_DONTNEED)
        memset(base + pend, 0, end - pend)
    elif end > start:
        memset(base + start, 0, end - start)


# ---------------------------------------------------------------- page state

cdef class PageState:
    """Bit-planes, pageblock bytes and free-list counters of one machine."""

    def __cinit__(self, int64_t nr_pfns, int pageblock_order, int max_order, int n_zids):
        cdef int p
        for p in range(NPLANES):
            self.planes[p] = NULL
        self.pb_mt = NULL
        self.pb_zone = NULL
        if nr_pfns <= 0 or pageblock_order < 0 or max_order < 0 or n_zids <= 0:
            raise ValueError("bad PageState geometry")
        self.nr_pfns = nr_pfns
        self.pageblock_order = pageblock_order
        self.max_order = max_order
        self.n_zids = n_zids
        # one spare word so that scans may read one word past the end
        self.plane_bytes = (((nr_pfns + 63) >> 6) + 1) * 8
        self.nr_pageblocks = (nr_pfns >> pageblock_order) + 1
        self.pb_bytes = <size_t>self.nr_pageblocks
        for p in range(NPLANES):
            self.planes[p] = <uint64_t*>_map(self.plane_bytes)
        self.pb_mt = <uint8_t*>_map(self.pb_bytes)
        self.pb_zone = <uint8_t*>_map(self.pb_bytes)
        self.nr_free = np.zeros((n_zids, MIGRATE_TYPES, max_order + 1), dtype=np.int64)
        self._nr_free = self.nr_free

    def __dealloc__(self):
        cdef int p
        for p in range(NPLANES):
            if self.planes[p] != NULL:
                munmap(self.planes[p], self.plane_bytes)
        if self.pb_mt != NULL:
            munmap(self.pb_mt, self.pb_bytes)
        if self.pb_zone != NULL:
            munmap(self.pb_zone, self.pb_bytes)

    cdef inline int list_of(self, int64_t pfn) noexcept nogil:
        cdef uint8_t b = self.pb_mt[pfn >> self.pageblock_order]
        return MIGRATE_ISOLATE if (b & PB_ISOLATE) else (b & 7)

    cdef inline int zone_of(self, int64_t pfn) noexcept nogil:
        return <int>self.pb_zone[pfn >> self.pageblock_order] - 1

    cdef void _check(self, int64_t s, int64_t e) except *:
        if s < 0 or e > self.nr_pfns or s > e:
            raise IndexError(f"pfn range [{s:#x}, {e:#x}) outside [0, {self.nr_pfns:#x})")

    # ------------------------------------------------------------ plane access

    def set(self, int plane, int64_t s, int64_t e):
        """Set ``plane`` bits for pfns [s, e)."""
        self._check(s, e)
        with nogil:
            set_bits(self.planes[plane], s, e)

    def clear(self, int plane, int64_t s, int64_t e):
        """Clear ``plane`` bits for pfns [s, e)."""
        self._check(s, e)
        with nogil:
            clear_bits(self.planes[plane], s, e)

    def count(self, int plane, int64_t s, int64_t e):
        """Number of ``plane`` bits set in [s, e)."""
        self._check(s, e)
        cdef int64_t n
        with nogil:
            n = count_bits(self.planes[plane], s, e)
        return n

    def test(self, int plane, int64_t pfn):
        self._check(pfn, pfn + 1)
        return bool(test_bit(self.planes[plane], pfn))

    def find_set(self, int plane, int64_t s, int64_t e):
        """First pfn in [s, e) with ``plane`` set, or -1."""
        self._check(s, e)
        cdef int64_t r
        with nogil:
            r = find_next_set(self.planes[plane], s, e)
        return -1 if r >= e else r

    def find_clear(self, int plane, int64_t s, int64_t e):
        """First pfn in [s, e) with ``plane`` clear, or -1."""
        self._check(s, e)
        cdef int64_t r
        with nogil:
            r = find_next_zero(self.planes[plane], s, e)
        return -1 if r >= e else r

    def words(self, int plane, int64_t s, int64_t e):
        """Copy of the words holding pfns [s, e); s and e must be multiples of 64."""
        self._check(s, e)
        if s & 63 or e & 63:
            raise ValueError("words() needs 64-aligned pfns")
        cdef int64_t n = (e - s) >> 6
        out = np.empty(n, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef int64_t i, base = s >> 6
        cdef uint64_t* w = self.planes[plane]
        with nogil:
            for i in range(n):
                o[i] = w[base + i]
        return out

    def release(self, int64_t s, int64_t e, planes=None):
        """Zero pfns [s, e) of the given planes (all if None) and their pageblock
        bytes when all planes are released; give whole host pages back."""
        self._check(s, e)
        cdef int p
        cdef int64_t ws, we
        sel = range(NPLANES) if planes is None else planes
        for p in sel:
            with nogil:
                # partial words at the edges keep the bits outside [s, e)
                ws = (s + 63) >> 6
                we = e >> 6
                if we <= ws:
                    clear_bits(self.planes[p], s, e)
                else:
                    clear_bits(self.planes[p], s, ws << 6)
                    clear_bits(self.planes[p], we << 6, e)
                    _release_bytes(<uint8_t*>self.planes[p], <size_t>ws * 8, <size_t>we * 8)
        if planes is None:
            self._check_pb_aligned(s, e)
            with nogil:
                _release_bytes(self.pb_mt, <size_t>(s >> self.pageblock_order),
                               <size_t>(e >> self.pageblock_order))
                _release_bytes(self.pb_zone, <size_t>(s >> self.pageblock_order),
                               <size_t>(e >> self.pageblock_order))

    cdef void _check_pb_aligned(self, int64_t s, int64_t e) except *:
        cdef int64_t m = (<int64_t>1 << self.pageblock_order) - 1
        if s & m or e & m:
            raise ValueError(f"pfn range [{s:#x}, {e:#x}) is not pageblock aligned")

    # ------------------------------------------------------------ pageblocks

    def set_pageblocks(self, int64_t s, int64_t e, int migratetype, int zid):
        """Set the migratetype (not isolated) and zone id of the pageblocks of
        [s, e), which must hold no free page (memmap init of a range)."""
        self._check(s, e)
        self._check_pb_aligned(s, e)
        cdef int64_t pb
        with nogil:
            for pb in range(s >> self.pageblock_order, e >> self.pageblock_order):
                self.pb_mt[pb] = <uint8_t>migratetype
                self.pb_zone[pb] = <uint8_t>(zid + 1)

    def pageblock(self, int64_t pfn):
        """(migratetype, isolated, zid) of the pageblock holding pfn; zid -1 if none."""
        self._check(pfn, pfn + 1)
        cdef uint8_t b = self.pb_mt[pfn >> self.pageblock_order]
        return (b & 7, bool(b & PB_ISOLATE), self.zone_of(pfn))

    def pageblock_bytes(self, int64_t s, int64_t e):
        """(migratetype bytes, zone bytes) for the pageblocks of [s, e)."""
        self._check(s, e)
        cdef int64_t a = s >> self.pageblock_order
        cdef int64_t b = (e + (1 << self.pageblock_order) - 1) >> self.pageblock_order
        mt = np.empty(b - a, dtype=np.uint8)
        zn = np.empty(b - a, dtype=np.uint8)
        cdef uint8_t[::1] m = mt
        cdef uint8_t[::1] z = zn
        cdef int64_t i
        for i in range(b - a):
            m[i] = self.pb_mt[a + i]
            z[i] = self.pb_zone[a + i]
        return mt, zn

    cdef void move_pageblock_counts(self, int64_t pb, int new_list) noexcept nogil:
        # move the free blocks whose head is in pageblock pb to list new_list
        cdef int64_t s = pb << self.pageblock_order
        cdef int64_t e = s + (<int64_t>1 << self.pageblock_order)
        cdef int64_t h
        cdef int o, old = self.list_of(s), z = self.zone_of(s)
        if old == new_list:
            return
        h = find_next_set(self.planes[P_HEAD], s, e)
        while h < e:
            o = self.head_order(h)
            self._nr_free[z, old, o] -= 1
            self._nr_free[z, new_list, o] += 1
            h = find_next_set(self.planes[P_HEAD], h + 1, e)

    def set_migratetype(self, int64_t s, int64_t e, int migratetype):
        """set_pageblock_migratetype over [s, e), moving free blocks between lists."""
        self._check(s, e)
        self._check_pb_aligned(s, e)
        cdef int64_t pb
        cdef uint8_t b
        with nogil:
            self.split_at(s)
            self.split_at(e)
            for pb in range(s >> self.pageblock_order, e >> self.pageblock_order):
                b = self.pb_mt[pb]
                if not (b & PB_ISOLATE):
                    self.move_pageblock_counts(pb, migratetype)
                self.pb_mt[pb] = (b & PB_ISOLATE) | <uint8_t>migratetype

    def isolate(self, int64_t s, int64_t e):
        """Isolate the pageblocks of [s, e): move their free blocks to MIGRATE_ISOLATE.
        Returns the number of pageblocks isolated."""
        self._check(s, e)
        self._check_pb_aligned(s, e)
        cdef int64_t pb, n = 0
        with nogil:
            self.split_at(s)
            self.split_at(e)
            for pb in range(s >> self.pageblock_order, e >> self.pageblock_order):
                if self.pb_mt[pb] & PB_ISOLATE:
                    continue
                self.move_pageblock_counts(pb, MIGRATE_ISOLATE)
                self.pb_mt[pb] |= PB_ISOLATE
                n += 1
        return n

    def unisolate(self, int64_t s, int64_t e):
        """Undo isolate(): free blocks go back to their pageblock's list; blocks of
        at least pageblock order are freed again so that they can merge (as
        unset_migratetype_isolate does).  Returns the pageblocks un-isolated."""
        self._check(s, e)
        self._check_pb_aligned(s, e)
        cdef int64_t pb, n = 0, ps, pe, h
        cdef int o
        with nogil:
            for pb in range(s >> self.pageblock_order, e >> self.pageblock_order):
                if not (self.pb_mt[pb] & PB_ISOLATE):
                    continue
                self.move_pageblock_counts(pb, self.pb_mt[pb] & 7)
                self.pb_mt[pb] &= ~PB_ISOLATE
                n += 1
            for pb in range(s >> self.pageblock_order, e >> self.pageblock_order):
                ps = pb << self.pageblock_order
                pe = ps + (<int64_t>1 << self.pageblock_order)
                h = find_next_set(self.planes[P_HEAD], ps, pe)
                while h < pe:
                    o = self.head_order(h)
                    if o >= self.pageblock_order and o < self.max_order:
                        self.del_block(h, o)
                        self.free_one(h, o)
                    h = find_next_set(self.planes[P_HEAD], h + 1, pe)
        return n

    # ------------------------------------------------------------ buddy blocks

    cdef int head_order(self, int64_t h) noexcept nogil:
        # the block ends at the first following head or non-free page
        cdef int64_t limit = h + (<int64_t>1 << self.max_order) + 1
        cdef int64_t i, last, q
        cdef uint64_t word
        if limit > self.nr_pfns:
            limit = self.nr_pfns
        q = limit
        if h + 1 < limit:
            i = (h + 1) >> 6
            last = (limit - 1) >> 6
            word = (self.planes[P_HEAD][i] | ~self.planes[P_BUDDY][i]) & lo_mask(h + 1)
            while True:
                if word:
                    q = (i << 6) + __builtin_ctzll(word)
                    if q > limit:
                        q = limit
                    break
                i += 1
                if i > last:
                    break
                word = self.planes[P_HEAD][i] | ~self.planes[P_BUDDY][i]
        return 63 - __builtin_clzll(<uint64_t>(q - h))

    cdef inline void add_block(self, int64_t pfn, int order) noexcept nogil:
        # put a free block on its list without merging (expand())
        set_bits(self.planes[P_BUDDY], pfn, pfn + (<int64_t>1 << order))
        self.planes[P_HEAD][pfn >> 6] |= (<uint64_t>1) << (pfn & 63)
        self._nr_free[self.zone_of(pfn), self.list_of(pfn), order] += 1

    cdef inline void del_block(self, int64_t pfn, int order) noexcept nogil:
        # take a free block off its list; its pages keep P_BUDDY for the caller
        self.planes[P_HEAD][pfn >> 6] &= ~((<uint64_t>1) << (pfn & 63))
        self._nr_free[self.zone_of(pfn), self.list_of(pfn), order] -= 1

    cdef void free_one(self, int64_t pfn, int order) noexcept nogil:
        # __free_one_page(): merge with free buddies of the same order and zone
        cdef int zone = self.zone_of(pfn)
        cdef int mt = self.list_of(pfn), bmt
        cdef int64_t buddy, size, pb
        cdef uint64_t* H = self.planes[P_HEAD]
        set_bits(self.planes[P_BUDDY], pfn, pfn + (<int64_t>1 << order))
        # the head bit marks where the block starts, so that head_order() of a
        # buddy below it stops here
        H[pfn >> 6] |= (<uint64_t>1) << (pfn & 63)
        while order < self.max_order:
            size = <int64_t>1 << order
            buddy = pfn ^ size
            if buddy < 0 or buddy + size > self.nr_pfns:
                break
            if not test_bit(self.planes[P_HEAD], buddy):
                break
            if self.zone_of(buddy) != zone:
                break
            if self.head_order(buddy) != order:
                break
            bmt = mt
            if order >= self.pageblock_order:
                bmt = self.list_of(buddy)
                # no merging across isolated / non-mergeable pageblocks
                if bmt != mt and (mt >= MIGRATE_HIGHATOMIC or bmt >= MIGRATE_HIGHATOMIC):
                    break
            self.del_block(buddy, order)
            if bmt != mt:
                for pb in range(buddy >> self.pageblock_order,
                                (buddy + size) >> self.pageblock_order):
                    self.pb_mt[pb] = (self.pb_mt[pb] & PB_ISOLATE) | <uint8_t>mt
            H[pfn >> 6] &= ~((<uint64_t>1) << (pfn & 63))
            pfn = buddy & pfn
            order += 1
            H[pfn >> 6] |= (<uint64_t>1) << (pfn & 63)
        self._nr_free[zone, mt, order] += 1

    cdef void insert_natural(self, int64_t s, int64_t e) noexcept nogil:
        # add [s, e) as the largest naturally aligned blocks, without merging
        cdef int o
        while s < e:
            o = ctz64(s)
            if o > self.max_order:
                o = self.max_order
            while s + (<int64_t>1 << o) > e:
                o -= 1
            self.add_block(s, o)
            s += <int64_t>1 << o

    cdef int64_t head_containing(self, int64_t pfn) noexcept nogil:
        # head of the free block holding pfn, or -1 if pfn is not free
        cdef int64_t lo, h
        if pfn < 0 or pfn >= self.nr_pfns or not test_bit(self.planes[P_BUDDY], pfn):
            return -1
        lo = pfn - (<int64_t>1 << self.max_order)
        if lo < 0:
            lo = 0
        h = find_prev_set(self.planes[P_HEAD], pfn, lo)
        return h

    cdef void split_at(self, int64_t pfn) noexcept nogil:
        # make pfn the start of a free block if it lies inside one
        cdef int64_t h = self.head_containing(pfn)
        cdef int o
        if h < 0 or h == pfn:
            return
        o = self.head_order(h)
        if h + (<int64_t>1 << o) <= pfn:
            return
        self.del_block(h, o)
        self.insert_natural(h, pfn)
        self.insert_natural(pfn, h + (<int64_t>1 << o))

    def head_order_of(self, int64_t pfn):
        """Order of the free block whose head is pfn, or -1."""
        self._check(pfn, pfn + 1)
        if not test_bit(self.planes[P_HEAD], pfn):
            return -1
        return self.head_order(pfn)

    cdef int64_t _free_aligned(self, int64_t s, int64_t e, int strategy) noexcept nogil:
        # online_pages_range() for the strategies whose chunks are always
        # naturally aligned: ctz, get_order lowered to alignment, single pages
        cdef int64_t pfn = s
        cdef int order
        while pfn < e:
            if strategy == FREE_PAGE:
                order = 0
            elif strategy == FREE_CTZ:
                order = ctz64(pfn)
                if order > self.max_order:
                    order = self.max_order
                while pfn + (<int64_t>1 << order) > e:
                    order -= 1
            else:
                order = get_order(e - pfn)
                if order > self.max_order:
                    order = self.max_order
                while pfn & ((<int64_t>1 << order) - 1):
                    order -= 1
                # get_order() rounds up; never free past the range
                while pfn + (<int64_t>1 << order) > e:
                    order -= 1
            self.free_one(pfn, order)
            pfn += <int64_t>1 << order
        return e - s

    def free_range(self, int64_t s, int64_t e, int strategy=FREE_CTZ, list misaligned=None):
        """Free pfns [s, e) to the buddy in chunks chosen by ``strategy``, merging as
        __free_one_page does.  Chunks that are not naturally aligned are appended to
        ``misaligned`` as (pfn, order).  Returns the number of pages freed."""
        self._check(s, e)
        cdef int64_t pfn = s, freed = 0, size
        cdef int order
        cdef bint aligned
        if strategy != FREE_GET_ORDER:
            with nogil:
                freed = self._free_aligned(s, e, strategy)
            return freed
        while pfn < e:
            # 4.20 online_pages_blocks(): the order from the remaining size only
            order = get_order(e - pfn)
            if order > self.max_order:
                order = self.max_order
            size = <int64_t>1 << order
            aligned = (pfn & (size - 1)) == 0
            if not aligned and misaligned is not None:
                misaligned.append((pfn, order))
            if pfn + size > e:
                # get_order() rounds up: the 4.20 loop would free pages past the
                # range; hotmem stops at the range end and reports the chunk
                if misaligned is not None:
                    misaligned.append((pfn, order))
                self.insert_natural(pfn, e)
                freed += e - pfn
                break
            with nogil:
                if aligned:
                    self.free_one(pfn, order)
                else:
                    # a misaligned block cannot merge correctly; keep it as freed
                    self.add_block(pfn, order)
            freed += size
            pfn += size
        return freed

    def online_blocks(self, int64_t start, int64_t n, int64_t ppb, int64_t nr_vmemmap,
                      int zid, int strategy=FREE_CTZ):
        """The page work of onlining n consecutive blocks of ppb pages into zone
        zid: the first nr_vmemmap pages of each block become memmap pages in
        MIGRATE_UNMOVABLE pageblocks, the rest MIGRATE_MOVABLE, freed in
        ``strategy`` chunks.  Returns the pages freed."""
        self._check(start, start + n * ppb)
        self._check_pb_aligned(start, start + nr_vmemmap)
        self._check_pb_aligned(start, start + ppb)
        if strategy == FREE_GET_ORDER:
            raise ValueError("online_blocks: get_order chunks need free_range()")
        cdef int64_t b, s, pb, freed = 0
        cdef int64_t pbv = nr_vmemmap >> self.pageblock_order
        cdef int64_t pbn = ppb >> self.pageblock_order
        with nogil:
            for b in range(n):
                s = start + b * ppb
                for pb in range(pbn):
                    self.pb_mt[(s >> self.pageblock_order) + pb] = (
                        MIGRATE_UNMOVABLE if pb < pbv else MIGRATE_MOVABLE)
                    self.pb_zone[(s >> self.pageblock_order) + pb] = <uint8_t>(zid + 1)
                set_bits(self.planes[P_VMEMMAP], s, s + nr_vmemmap)
                freed += self._free_aligned(s + nr_vmemmap, s + ppb, strategy)
        return freed

    def offline_blocks(self, int64_t start, int64_t n, int64_t ppb, int64_t nr_vmemmap):
        """The page work of offlining n consecutive blocks whose pages are all
        free but their memmap: the free blocks leave the buddy, the memmap marks
        and pageblock bytes are cleared and the memory goes back to the host.
        Returns the free pages removed."""
        self._check(start, start + n * ppb)
        self._check_pb_aligned(start, start + ppb)
        cdef int64_t b, s, removed = 0
        with nogil:
            for b in range(n):
                s = start + b * ppb
                removed += self._remove_free(s + nr_vmemmap, s + ppb)
                clear_bits(self.planes[P_VMEMMAP], s, s + nr_vmemmap)
        self.release(start, start + n * ppb)
        return removed

    def find_zone_pageblock(self, int zid, int64_t s, int64_t e, bint reverse):
        """First (or, with reverse, last) pfn of a pageblock of [s, e) whose zone is
        zid, as the pageblock's first pfn; -1 if none."""
        self._check(s, e)
        cdef int64_t a = s >> self.pageblock_order
        cdef int64_t b = (e + (1 << self.pageblock_order) - 1) >> self.pageblock_order
        cdef int64_t pb
        cdef uint8_t want = <uint8_t>(zid + 1)
        cdef int64_t found = -1
        with nogil:
            if not reverse:
                for pb in range(a, b):
                    if self.pb_zone[pb] == want:
                        found = pb << self.pageblock_order
                        break
            else:
                pb = b - 1
                while pb >= a:
                    if self.pb_zone[pb] == want:
                        found = pb << self.pageblock_order
                        break
                    pb -= 1
        return found

    def free_pages(self, int64_t[::1] pfns):
        """Free single allocated pages (clearing P_UNMOVABLE); runs of consecutive
        pfns are freed as aligned chunks, which merges to the same final state."""
        cdef int64_t i = 0, n = pfns.shape[0], s, e, pfn
        cdef int order
        for i in range(n):
            self._check(pfns[i], pfns[i] + 1)
        i = 0
        with nogil:
            while i < n:
                s = pfns[i]
                e = s + 1
                while i + 1 < n and pfns[i + 1] == e:
                    e += 1
                    i += 1
                i += 1
                clear_bits(self.planes[P_UNMOVABLE], s, e)
                pfn = s
                while pfn < e:
                    order = ctz64(pfn)
                    if order > self.max_order:
                        order = self.max_order
                    while pfn + (<int64_t>1 << order) > e:
                        order -= 1
                    self.free_one(pfn, order)
                    pfn += <int64_t>1 << order

    def take_range(self, int64_t s, int64_t e):
        """Allocate every page of [s, e), which must all be free: blocks inside go
        off their lists, blocks across an edge are split (expand())."""
        self._check(s, e)
        if s >= e:
            return
        if count_bits(self.planes[P_BUDDY], s, e) != e - s:
            raise ValueError(f"take_range: pfns [{s:#x}, {e:#x}) are not all free")
        with nogil:
            self._remove_free(s, e)

    def take_pages(self, int64_t[::1] pfns):
        """take_range() for each run of consecutive pfns in a sorted array."""
        cdef int64_t i = 0, n = pfns.shape[0], s, e
        while i < n:
            s = pfns[i]
            e = s + 1
            while i + 1 < n and pfns[i + 1] == e:
                e += 1
                i += 1
            i += 1
            self.take_range(s, e)

    cdef int64_t _remove_free(self, int64_t s, int64_t e) noexcept nogil:
        cdef int64_t h, n
        cdef int o
        self.split_at(s)
        self.split_at(e)
        n = count_bits(self.planes[P_BUDDY], s, e)
        h = find_next_set(self.planes[P_HEAD], s, e)
        while h < e:
            o = self.head_order(h)
            self.del_block(h, o)
            h = find_next_set(self.planes[P_HEAD], h + 1, e)
        clear_bits(self.planes[P_BUDDY], s, e)
        return n

    def remove_free_range(self, int64_t s, int64_t e):
        """__offline_isolated_pages(): take every free block of [s, e) off its list
        and clear the range's buddy bits.  Returns the free pages removed."""
        self._check(s, e)
        cdef int64_t n
        with nogil:
            n = self._remove_free(s, e)
        return n

    # ------------------------------------------------------------ scans

    def has_unmovable(self, int64_t s, int64_t e, bint movable_zone, bint skip_vmemmap):
        """has_unmovable_pages(): first pfn of [s, e) that is PG_reserved (never a
        skipped vmemmap page) or, outside ZONE_MOVABLE, an unmovable allocation.
        Word-wise reduction over the planes; -1 if none."""
        self._check(s, e)
        if s >= e:
            return -1
        cdef int64_t i = s >> 6, last = (e - 1) >> 6, r = -1
        cdef uint64_t word
        cdef const uint64_t* R = self.planes[P_RESERVED]
        cdef const uint64_t* V = self.planes[P_VMEMMAP]
        cdef const uint64_t* U = self.planes[P_UNMOVABLE]
        with nogil:
            while i <= last:
                word = R[i]
                if skip_vmemmap:
                    word &= ~V[i]
                if not movable_zone:
                    word |= U[i]
                if i == s >> 6:
                    word &= lo_mask(s)
                if i == last:
                    word &= hi_mask(e)
                if word:
                    r = (i << 6) + __builtin_ctzll(word)
                    break
                i += 1
        return r

    def first_not_free(self, int64_t s, int64_t e, bint skip_vmemmap, bint skip_offline=False):
        """__test_page_isolated_in_pageblock(): first pfn of [s, e) that is neither
        free nor (when skipped) a vmemmap page, nor (when skipped: its driver
        dropped the reference in MEM_GOING_OFFLINE) a PageOffline page; -1 if none."""
        self._check(s, e)
        if s >= e:
            return -1
        cdef int64_t i = s >> 6, last = (e - 1) >> 6, r = -1
        cdef uint64_t word
        cdef const uint64_t* B = self.planes[P_BUDDY]
        cdef const uint64_t* V = self.planes[P_VMEMMAP]
        cdef const uint64_t* O = self.planes[P_OFFLINE]
        with nogil:
            while i <= last:
                word = ~B[i]
                if skip_vmemmap:
                    word &= ~V[i]
                if skip_offline:
                    word &= ~O[i]
                if i == s >> 6:
                    word &= lo_mask(s)
                if i == last:
                    word &= hi_mask(e)
                if word:
                    r = (i << 6) + __builtin_ctzll(word)
                    break
                i += 1
        return r

    def first_not_isolated(self, int64_t s, int64_t e):
        """First pfn of [s, e) whose pageblock is not isolated, or -1."""
        self._check(s, e)
        cdef int64_t pb
        for pb in range(s >> self.pageblock_order,
                        ((e - 1) >> self.pageblock_order) + 1 if e > s else 0):
            if not (self.pb_mt[pb] & PB_ISOLATE):
                return max(s, pb << self.pageblock_order)
        return -1

    def allocated_pfns(self, int64_t s, int64_t e, bint unmovable):
        """Allocated pages of [s, e): movable ones (no plane bit set) or, with
        ``unmovable``, those with P_UNMOVABLE.  Returns a sorted int64 array."""
        self._check(s, e)
        cdef int64_t i, n = 0, cap = 1024, base
        cdef uint64_t word
        out = np.empty(cap, dtype=np.int64)
        cdef int64_t[::1] o = out
        if s >= e:
            return out[:0]
        cdef int64_t last = (e - 1) >> 6
        for i in range(s >> 6, last + 1):
            if unmovable:
                word = self.planes[P_UNMOVABLE][i]
            else:
                word = ~(self.planes[P_VMEMMAP][i] | self.planes[P_RESERVED][i] |
                         self.planes[P_BUDDY][i] | self.planes[P_UNMOVABLE][i] |
                         self.planes[P_OFFLINE][i])
            if i == s >> 6:
                word &= lo_mask(s)
            if i == last:
                word &= hi_mask(e)
            base = i << 6
            while word:
                if n == cap:
                    cap *= 2
                    out = np.resize(out, cap)
                    o = out
                o[n] = base + __builtin_ctzll(word)
                n += 1
                word &= word - 1
        return out[:n]

    def first_free(self, int64_t s, int64_t e, int64_t n):
        """The first n free pfns of [s, e) in ascending order (fewer if there are
        fewer)."""
        self._check(s, e)
        out = np.empty(max(n, 0), dtype=np.int64)
        cdef int64_t[::1] o = out
        cdef int64_t k = 0, p = s, q
        cdef const uint64_t* B = self.planes[P_BUDDY]
        with nogil:
            while k < n and p < e:
                p = find_next_set(B, p, e)
                if p >= e:
                    break
                q = find_next_zero(B, p, e)
                while p < q and k < n:
                    o[k] = p
                    k += 1
                    p += 1
        return out[:k]

    def free_by_rank(self, int64_t s, int64_t e, int64_t[::1] ranks):
        """pfns of the free pages of [s, e) with the given sorted ranks (0 = lowest
        free pfn): word-wise popcount, then a bit walk inside one word."""
        self._check(s, e)
        cdef int64_t n = ranks.shape[0], k = 0, seen = 0, i, last, c, j
        cdef uint64_t w2
        out = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] o = out
        cdef uint64_t word
        if s >= e or n == 0:
            return out[:0]
        last = (e - 1) >> 6
        with nogil:
            i = s >> 6
            while i <= last and k < n:
                word = self.planes[P_BUDDY][i]
                if i == s >> 6:
                    word &= lo_mask(s)
                if i == last:
                    word &= hi_mask(e)
                c = __builtin_popcountll(word)
                while k < n and ranks[k] < seen + c:
                    # the (ranks[k] - seen)-th set bit of this word
                    w2 = word
                    for j in range(ranks[k] - seen):
                        w2 &= w2 - 1
                    o[k] = (i << 6) + __builtin_ctzll(w2)
                    k += 1
                seen += c
                i += 1
        if k != n:
            raise ValueError("free_by_rank: rank beyond the free pages of the range")
        return out

    def first_free_block(self, int64_t s, int64_t e, int order):
        """The lowest pfn of [s, e) heading a free block of exactly ``order``, or -1."""
        self._check(s, e)
        cdef int64_t h, r = -1
        with nogil:
            h = find_next_set(self.planes[P_HEAD], s, e)
            while h < e:
                if self.head_order(h) == order:
                    r = h
                    break
                h = find_next_set(self.planes[P_HEAD], h + 1, e)
        return r

    def free_blocks(self, int64_t s, int64_t e):
        """(pfn, order) of the free blocks whose head is in [s, e), as two arrays."""
        self._check(s, e)
        cdef int64_t n = count_bits(self.planes[P_HEAD], s, e), k = 0, h
        pf = np.empty(n, dtype=np.int64)
        od = np.empty(n, dtype=np.int8)
        cdef int64_t[::1] p = pf
        cdef int8_t[::1] d = od
        with nogil:
            h = find_next_set(self.planes[P_HEAD], s, e)
            while h < e:
                p[k] = h
                d[k] = self.head_order(h)
                k += 1
                h = find_next_set(self.planes[P_HEAD], h + 1, e)
        return pf, od
