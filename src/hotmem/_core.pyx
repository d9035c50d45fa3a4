# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled core of hotmem: per-page bit-planes and the buddy allocator's hot loops.

Per-page state lives in bit-planes of 64-bit words (one bit per pfn), mapped with
``MAP_NORESERVE`` over the whole physical address space of the simulated machine:
like SPARSEMEM, an absent or offline range costs no memory until it is written,
and ``release`` hands fully cleared ranges back to the host.  Per pageblock there is
one byte of migratetype (plus the isolate bit) and one byte of zone id.

Beside the planes, each chunk of ``2**chunk_order`` pfns (a memory section when the
machine passes it; at least a max-order block, so that no free block crosses a
chunk) has a descriptor, as a run container beside bitmap containers: CH_ZERO
(every plane word is zero, as after boot or ``release``), CH_BITS (the planes hold
the state), or CH_UNIFORM + v: the first v pages are memmap pages (P_VMEMMAP) and
the rest are free, in the natural blocks that onlining leaves (the largest
aligned blocks up to max order), while the plane words stay zero.  Onlining a
block of untouched chunks writes only descriptors and pageblock bytes, and
offlining it drops them, so a machine of many TiB online and unallocated costs
a few bytes per chunk.  Every method sees the same state in both forms: those
that need bits write a uniform chunk out first (``_expand``), ``count`` reads the
descriptor, and ``release`` of whole chunks folds them back to CH_ZERO.

A free buddy block of order ``o`` at ``pfn`` is: P_HEAD set at ``pfn`` and P_BUDDY set
on all ``2**o`` pages.  Its order is not stored: the block ends where the next head
or the next non-free page begins, so ``head_order`` recovers it with a word scan.
Which free list a block is on follows its first pageblock (MIGRATE_ISOLATE when
that pageblock is isolated), as in kernels since 6.10, where the free list always
matches the pageblock.  ``nr_free[zid, migratetype, order]`` counts the blocks.

Everything here is policy-free: the Python layer decides zones, eras and errors.
"""
import numpy as np
from libc.stdint cimport uint64_t, int64_t, uint8_t, int8_t, uint32_t, int16_t, int32_t
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


cdef void _zero_plane(uint64_t* w, int64_t s, int64_t e) noexcept nogil:
    # clear pfns [s, e) of a plane; partial words at the edges keep the bits
    # outside, whole host pages go back to the host
    cdef int64_t ws = (s + 63) >> 6
    cdef int64_t we = e >> 6
    if we <= ws:
        clear_bits(w, s, e)
    else:
        clear_bits(w, s, ws << 6)
        clear_bits(w, we << 6, e)
        _release_bytes(<uint8_t*>w, <size_t>ws * 8, <size_t>we * 8)


cdef inline void _set_clipped(uint64_t* o, int64_t a, int64_t b, int64_t lo, int64_t hi,
                              int64_t base) noexcept nogil:
    # set the bits of [a, b) clipped to [lo, hi), pfns counted from base
    if a < lo:
        a = lo
    if b > hi:
        b = hi
    if a < b:
        set_bits(o, a - base, b - base)


# ---------------------------------------------------------------- watermarks

cdef extern from *:
    ctypedef long long i128 "__int128"


def _wmarks_wide(z, pages_min, lowmem, bint highmem_like, swap_cluster_max, scale_factor):
    managed = z.managed_pages
    tmp = pages_min * managed // lowmem
    wmin = min(max(managed // 1024, swap_cluster_max), 128) if highmem_like else tmp
    tmp = max(tmp >> 2, managed * scale_factor // 10000)
    z.wmark_min = wmin
    z.wmark_low = wmin + tmp
    z.wmark_high = wmin + 2 * tmp
    z.wmark_promo = wmin + 3 * tmp


def setup_per_zone_wmarks(list zones, int64_t pages_min, bint movable_like_highmem,
                          int zone_movable, int zone_device, int64_t swap_cluster_max,
                          int64_t scale_factor):
    """The arithmetic of page_alloc.setup_per_zone_wmarks() over the zones (Zone
    objects), exact for any managed count (128-bit products); the kernel's
    constants come from the caller."""
    cdef int64_t lowmem = 0, managed, tmp, wmin, t2
    cdef int zt
    for z in zones:
        zt = z.ztype
        if zt != zone_device and (zt != zone_movable or not movable_like_highmem):
            lowmem += <int64_t>z.managed_pages
    cdef i128 wide
    for z in zones:
        zt = z.ztype
        managed = z.managed_pages
        wide = (<i128>pages_min * managed) // lowmem if lowmem else 0
        if wide > (<i128>1 << 60):
            # beyond 64-bit sums: the same arithmetic on Python integers
            _wmarks_wide(z, pages_min, lowmem, zt == zone_movable and movable_like_highmem,
                         swap_cluster_max, scale_factor)
            continue
        tmp = <int64_t>wide
        if zt == zone_movable and movable_like_highmem:
            wmin = managed // 1024
            if wmin < swap_cluster_max:
                wmin = swap_cluster_max
            if wmin > 128:
                wmin = 128
        else:
            wmin = tmp
        t2 = <int64_t>((<i128>managed * scale_factor) // 10000)
        tmp = tmp >> 2
        if t2 > tmp:
            tmp = t2
        z.wmark_min = wmin
        z.wmark_low = wmin + tmp
        z.wmark_high = wmin + 2 * tmp
        z.wmark_promo = wmin + 3 * tmp


def wmark_inputs(list zones, int zone_normal, int zone_movable, int zone_device,
                 bint movable_like_highmem):
    """What min_free_kbytes depends on in the zones (page_alloc.
    init_per_zone_wmark_min): managed, present and high watermark of each zone
    up to zone_normal, then the lowmem pages."""
    cdef list out = []
    cdef int64_t lowmem = 0
    cdef int zt
    for z in zones:
        zt = z.ztype
        if zt <= zone_normal:
            out.append(z.managed_pages)
            out.append(z.present_pages)
            out.append(z.wmark_high)
        if zt != zone_device and (zt != zone_movable or not movable_like_highmem):
            lowmem += <int64_t>z.managed_pages
    out.append(lowmem)
    return tuple(out)


# ---------------------------------------------------------------- page state

def zone_free_pages(int64_t[:, :, ::1] nr_free, int zid):
    """NR_FREE_PAGES of zone zid from free-list counts nr_free[zid, list, order]:
    every list's pages (count << order) but MIGRATE_ISOLATE's."""
    cdef int mt, o
    cdef int64_t n = 0
    for mt in range(nr_free.shape[1]):
        if mt == MIGRATE_ISOLATE:
            continue
        for o in range(nr_free.shape[2]):
            n += nr_free[zid, mt, o] << o
    return n


def free_blocks_per_order(int64_t[:, :, ::1] nr_free, int zid):
    """[free blocks of zone zid of each order], the MIGRATE_ISOLATE list aside."""
    cdef int mt, o
    cdef int64_t n
    out = []
    for o in range(nr_free.shape[2]):
        n = 0
        for mt in range(nr_free.shape[1]):
            if mt != MIGRATE_ISOLATE:
                n += nr_free[zid, mt, o]
        out.append(n)
    return out


cdef inline int64_t _chunk_vmemmap(int64_t nr_vmemmap, int64_t k, int chunk_order) noexcept nogil:
    # memmap pages of the k-th chunk of a block whose first nr_vmemmap pages
    # are its memmap (the uniform descriptor's v)
    cdef int64_t v = nr_vmemmap - (k << chunk_order)
    if v < 0:
        return 0
    return min(v, <int64_t>1 << chunk_order)


cdef class PageState:
    """Bit-planes, pageblock bytes and free-list counters of one machine."""

    def __cinit__(self, int64_t nr_pfns, int pageblock_order, int max_order, int n_zids,
                  int chunk_order=-1):
        cdef int p
        for p in range(NPLANES):
            self.planes[p] = NULL
        self.pb_mt = NULL
        self.pb_zone = NULL
        self.ch = NULL
        if nr_pfns <= 0 or pageblock_order < 0 or max_order < 0 or n_zids <= 0:
            raise ValueError("bad PageState geometry")
        if chunk_order < 0:
            chunk_order = max(max_order, pageblock_order, 6)
        if chunk_order < max_order or chunk_order < pageblock_order or chunk_order < 6 \
                or chunk_order > 40:
            raise ValueError(f"chunk_order {chunk_order} is below max order, pageblock "
                             "order or a word, or above 40")
        self.chunk_order = chunk_order
        self.nr_chunks = (nr_pfns + (<int64_t>1 << chunk_order) - 1) >> chunk_order
        self.nr_uniform = 0
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
        self.ch_bytes = <size_t>self.nr_chunks * sizeof(uint32_t)
        self.ch = <uint32_t*>_map(self.ch_bytes)
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
        if self.ch != NULL:
            munmap(self.ch, self.ch_bytes)

    cdef inline int list_of(self, int64_t pfn) noexcept nogil:
        cdef uint8_t b = self.pb_mt[pfn >> self.pageblock_order]
        return MIGRATE_ISOLATE if (b & PB_ISOLATE) else (b & 7)

    cdef inline int zone_of(self, int64_t pfn) noexcept nogil:
        return <int>self.pb_zone[pfn >> self.pageblock_order] - 1

    cdef void _check(self, int64_t s, int64_t e) except *:
        if s < 0 or e > self.nr_pfns or s > e:
            raise IndexError(f"pfn range [{s:#x}, {e:#x}) outside [0, {self.nr_pfns:#x})")

    # ------------------------------------------------------------ chunks

    cdef void _expand(self, int64_t s, int64_t e, bint write) noexcept nogil:
        # the chunks of [s, e) (at least the one holding s; the one holding e
        # when e is inside it) in the planes: uniform ones are written out and,
        # with write, zero ones are marked as holding bits.  A free block never
        # crosses a chunk, so buddies, heads and orders of pfns in these chunks
        # are all in them.
        cdef int64_t c, c1
        cdef uint32_t k
        if self.nr_uniform == 0 and not write:
            return
        c = s >> self.chunk_order
        c1 = (e + (<int64_t>1 << self.chunk_order) - 1) >> self.chunk_order
        if c1 <= c:
            c1 = c + 1
        if c1 > self.nr_chunks:
            c1 = self.nr_chunks
        while c < c1:
            k = self.ch[c]
            if k >= CH_UNIFORM:
                self._write_uniform(c)
            elif write and k == CH_ZERO:
                self.ch[c] = CH_BITS
            c += 1

    cdef void _write_uniform(self, int64_t c) noexcept nogil:
        # a uniform chunk into the planes (its words are zero until now)
        cdef int64_t base = c << self.chunk_order
        cdef int64_t size = <int64_t>1 << self.chunk_order
        cdef int64_t v = self.ch[c] - CH_UNIFORM, p
        cdef int o
        set_bits(self.planes[P_VMEMMAP], base, base + v)
        set_bits(self.planes[P_BUDDY], base + v, base + size)
        p = v
        while p < size:
            o = self._natural_order(p)
            self.planes[P_HEAD][(base + p) >> 6] |= (<uint64_t>1) << ((base + p) & 63)
            p += <int64_t>1 << o
        self.ch[c] = CH_BITS
        self.nr_uniform -= 1

    cdef void _uniform_counts(self, int64_t c, int64_t sign) noexcept nogil:
        # add (sign 1) or take (sign -1) the free blocks of uniform chunk c to or
        # from nr_free, each on the list of its pageblock
        cdef int64_t base = c << self.chunk_order
        cdef int64_t size = <int64_t>1 << self.chunk_order
        cdef int64_t p = self.ch[c] - CH_UNIFORM
        cdef int o
        while p < size:
            o = self._natural_order(p)
            self._nr_free[self.zone_of(base + p), self.list_of(base + p), o] += sign
            p += <int64_t>1 << o

    cdef int64_t _uniform_count(self, int64_t c, int plane, int64_t a, int64_t b) noexcept nogil:
        # bits of ``plane`` set in [a, b) (inside uniform chunk c)
        cdef int64_t base = c << self.chunk_order
        cdef int64_t size = <int64_t>1 << self.chunk_order
        cdef int64_t v = self.ch[c] - CH_UNIFORM, p, lo, hi, n = 0
        cdef int o
        if plane == P_VMEMMAP or plane == P_BUDDY:
            lo = base if plane == P_VMEMMAP else base + v
            hi = base + v if plane == P_VMEMMAP else base + size
            if a > lo:
                lo = a
            if b < hi:
                hi = b
            return hi - lo if hi > lo else 0
        if plane != P_HEAD:
            return 0
        p = v
        while p < size:
            if a <= base + p < b:
                n += 1
            o = self._natural_order(p)
            p += <int64_t>1 << o
        return n

    cdef bint _fold(self, int64_t c) noexcept nogil:
        # a chunk whose planes hold a uniform state again goes back to its
        # descriptor (or to CH_ZERO when every word is zero: all pages
        # allocated movable, or none online), and its words to the host
        cdef int64_t cs = c << self.chunk_order
        cdef int64_t size = <int64_t>1 << self.chunk_order
        cdef int64_t ce = cs + size, v, p, nheads = 0
        cdef int o, q
        cdef uint64_t* V = self.planes[P_VMEMMAP]
        cdef uint64_t* B = self.planes[P_BUDDY]
        cdef uint64_t* H = self.planes[P_HEAD]
        if self.ch[c] != CH_BITS or ce > self.nr_pfns:
            return False
        for q in range(NPLANES):
            if q != P_VMEMMAP and q != P_BUDDY and q != P_HEAD and \
                    find_next_set(self.planes[q], cs, ce) < ce:
                return False
        v = find_next_zero(V, cs, ce) - cs
        if count_bits(V, cs, ce) != v:
            return False
        if find_next_set(B, cs, ce) >= ce and find_next_set(H, cs, ce) >= ce and v == 0:
            self.ch[c] = CH_ZERO
            for q in range(NPLANES):
                _zero_plane(self.planes[q], cs, ce)
            return True
        if count_bits(B, cs, ce) != size - v or (v < size and find_next_set(B, cs, ce) != cs + v):
            return False
        p = v
        while p < size:
            if not test_bit(H, cs + p):
                return False
            nheads += 1
            o = self._natural_order(p)
            p += <int64_t>1 << o
        if count_bits(H, cs, ce) != nheads:
            return False
        for q in range(NPLANES):
            _zero_plane(self.planes[q], cs, ce)
        self.ch[c] = <uint32_t>(CH_UNIFORM + v)
        self.nr_uniform += 1
        return True

    def fold(self, int64_t s, int64_t e):
        """Fold the chunks of [s, e) whose planes hold a uniform state back to
        descriptors; returns how many."""
        self._check(s, e)
        cdef int64_t c, n = 0
        with nogil:
            for c in range(s >> self.chunk_order,
                           (e + (<int64_t>1 << self.chunk_order) - 1) >> self.chunk_order):
                if self._fold(c):
                    n += 1
        return n

    def expand(self, int64_t s, int64_t e):
        """Write the uniform chunks of [s, e) out to the planes (for code that
        reads the planes directly: the scan strategies)."""
        self._check(s, e)
        with nogil:
            self._expand(s, e, False)

    def chunk_kinds(self, int64_t s, int64_t e):
        """The descriptors of the chunks holding [s, e): 0 zero, 1 bits, 2 + v
        uniform with v memmap pages (uint32)."""
        self._check(s, e)
        cdef int64_t c0 = s >> self.chunk_order
        cdef int64_t c1 = (e + (<int64_t>1 << self.chunk_order) - 1) >> self.chunk_order
        out = np.empty(max(c1 - c0, 0), dtype=np.uint32)
        cdef uint32_t[::1] o = out
        cdef int64_t c
        for c in range(c0, c1):
            o[c - c0] = self.ch[c]
        return out

    def nr_chunks_with_bits(self):
        """Chunks whose state is in the planes (CH_BITS)."""
        cdef int64_t c, n = 0
        with nogil:
            for c in range(self.nr_chunks):
                if self.ch[c] == CH_BITS:
                    n += 1
        return n

    # ------------------------------------------------------------ plane access

    def set(self, int plane, int64_t s, int64_t e):
        """Set ``plane`` bits for pfns [s, e)."""
        self._check(s, e)
        with nogil:
            self._expand(s, e, True)
            set_bits(self.planes[plane], s, e)

    def clear(self, int plane, int64_t s, int64_t e):
        """Clear ``plane`` bits for pfns [s, e)."""
        self._check(s, e)
        with nogil:
            self._expand(s, e, True)
            clear_bits(self.planes[plane], s, e)

    def count(self, int plane, int64_t s, int64_t e):
        """Number of ``plane`` bits set in [s, e)."""
        self._check(s, e)
        cdef int64_t n
        with nogil:
            n = self._count(plane, s, e)
        return n

    cdef int64_t _count(self, int plane, int64_t s, int64_t e) noexcept nogil:
        cdef int64_t n = 0, pos = s, c, ce
        if self.nr_uniform == 0:
            return count_bits(self.planes[plane], s, e)
        while pos < e:
            c = pos >> self.chunk_order
            ce = (c + 1) << self.chunk_order
            if ce > e:
                ce = e
            if self.ch[c] >= CH_UNIFORM:
                n += self._uniform_count(c, plane, pos, ce)
            else:
                n += count_bits(self.planes[plane], pos, ce)
            pos = ce
        return n

    def test(self, int plane, int64_t pfn):
        self._check(pfn, pfn + 1)
        cdef int64_t c = pfn >> self.chunk_order
        if self.ch[c] >= CH_UNIFORM:
            return bool(self._u_test(c, plane, pfn))
        return bool(test_bit(self.planes[plane], pfn))

    def find_set(self, int plane, int64_t s, int64_t e):
        """First pfn in [s, e) with ``plane`` set, or -1."""
        self._check(s, e)
        cdef int64_t r
        with nogil:
            r = self._find(plane, s, e, True)
        return -1 if r >= e else r

    def find_clear(self, int plane, int64_t s, int64_t e):
        """First pfn in [s, e) with ``plane`` clear, or -1."""
        self._check(s, e)
        cdef int64_t r
        with nogil:
            r = self._find(plane, s, e, False)
        return -1 if r >= e else r

    cdef bint _u_test(self, int64_t c, int plane, int64_t pfn) noexcept nogil:
        # bit ``plane`` of pfn in uniform chunk c
        cdef int64_t rel = pfn - (c << self.chunk_order)
        cdef int64_t v = self.ch[c] - CH_UNIFORM
        cdef int k
        if plane == P_VMEMMAP:
            return rel < v
        if plane == P_BUDDY:
            return rel >= v
        if plane != P_HEAD or rel < v:
            return False
        # the natural blocks of [v, size) start at round_up(v, 2**k) for each
        # k below max order, then at every multiple of 2**max_order
        k = ctz64(rel)
        if k >= self.max_order:
            return True
        return ((v + (<int64_t>1 << k) - 1) >> k << k) == rel

    cdef int _natural_order(self, int64_t rel) noexcept nogil:
        # the order of the natural free block at offset rel of a uniform chunk
        # (the largest aligned block, capped at max order)
        cdef int o = ctz64(rel)
        return o if o <= self.max_order else self.max_order

    cdef int64_t _u_next_head(self, int64_t cs, int64_t v, int64_t pos) noexcept nogil:
        # the first head at or after pos of the natural blocks of a uniform
        # chunk at cs with v memmap pages; the chunk end if none
        cdef int64_t size = <int64_t>1 << self.chunk_order, p = v
        cdef int64_t top = <int64_t>1 << self.max_order
        cdef int o
        while p < size and cs + p < pos:
            o = self._natural_order(p)
            if o == self.max_order:
                # from here on a head every 2**max_order pfns
                p = (pos - cs + top - 1) & ~(top - 1)
                break
            p += <int64_t>1 << o
        return cs + (p if p < size else size)

    cdef int _head_order_at(self, int64_t h) noexcept nogil:
        # order of the free block whose head is h, from either form
        cdef int64_t c = h >> self.chunk_order
        if self.ch[c] >= CH_UNIFORM:
            return self._natural_order(h - (c << self.chunk_order))
        return self.head_order(h)

    cdef int64_t _find(self, int plane, int64_t s, int64_t e, bint want) noexcept nogil:
        # first pfn of [s, e) whose ``plane`` bit is ``want``, or e
        cdef int64_t pos = s, c, ce, r, cs, v, lo, hi
        if self.nr_uniform == 0:
            return find_next_set(self.planes[plane], s, e) if want else \
                find_next_zero(self.planes[plane], s, e)
        while pos < e:
            c = pos >> self.chunk_order
            cs = c << self.chunk_order
            ce = cs + (<int64_t>1 << self.chunk_order)
            if ce > e:
                ce = e
            if self.ch[c] < CH_UNIFORM:
                r = find_next_set(self.planes[plane], pos, ce) if want else \
                    find_next_zero(self.planes[plane], pos, ce)
                if r < ce:
                    return r
            elif plane == P_VMEMMAP or plane == P_BUDDY:
                v = self.ch[c] - CH_UNIFORM
                lo = cs if plane == P_VMEMMAP else cs + v
                hi = cs + v if plane == P_VMEMMAP else cs + (<int64_t>1 << self.chunk_order)
                if want:
                    r = lo if lo > pos else pos
                    if r < hi and r < ce:
                        return r
                else:
                    if pos < lo or pos >= hi:
                        return pos
                    if hi < ce:
                        return hi
            elif plane == P_HEAD:
                if want:
                    v = self.ch[c] - CH_UNIFORM
                    r = self._u_next_head(cs, v, pos)
                    if r < ce:
                        return r
                else:
                    r = pos
                    while r < ce and self._u_test(c, plane, r):
                        r += 1
                    if r < ce:
                        return r
            elif not want:
                return pos
            pos = ce
        return e

    def words(self, int plane, int64_t s, int64_t e):
        """Copy of the words holding pfns [s, e); s and e must be multiples of 64.
        Uniform chunks are read from their descriptor (nothing is written out)."""
        self._check(s, e)
        if s & 63 or e & 63:
            raise ValueError("words() needs 64-aligned pfns")
        cdef int64_t n = (e - s) >> 6
        out = np.empty(n, dtype=np.uint64)
        cdef uint64_t[::1] o = out
        cdef int64_t i, base = s >> 6, c, cs, ce, pos, v, p, hb, size
        cdef uint64_t* w = self.planes[plane]
        cdef int order
        if n == 0:
            return out
        with nogil:
            if self.nr_uniform == 0:
                for i in range(n):
                    o[i] = w[base + i]
            else:
                pos = s
                size = <int64_t>1 << self.chunk_order
                while pos < e:
                    c = pos >> self.chunk_order
                    cs = c << self.chunk_order
                    ce = cs + size
                    if ce > e:
                        ce = e
                    if self.ch[c] < CH_UNIFORM:
                        for i in range((pos >> 6) - base, (ce >> 6) - base):
                            o[i] = w[base + i]
                    else:
                        # the descriptor's bits, as pfns relative to out[0]
                        memset(&o[(pos >> 6) - base], 0, ((ce - pos) >> 6) * 8)
                        v = self.ch[c] - CH_UNIFORM
                        if plane == P_VMEMMAP:
                            _set_clipped(&o[0], cs, cs + v, pos, ce, s)
                        elif plane == P_BUDDY:
                            _set_clipped(&o[0], cs + v, cs + size, pos, ce, s)
                        elif plane == P_HEAD:
                            p = v
                            while p < size:
                                hb = cs + p
                                if pos <= hb < ce:
                                    o[(hb - s) >> 6] |= (<uint64_t>1) << ((hb - s) & 63)
                                order = self._natural_order(p)
                                p += <int64_t>1 << order
                    pos = ce
        return out

    def release(self, int64_t s, int64_t e, planes=None):
        """Zero pfns [s, e) of the given planes (all if None) and their pageblock
        bytes when all planes are released; give whole host pages back.  Whole
        chunks released in all planes become CH_ZERO (a uniform one without
        touching its words, which are zero)."""
        self._check(s, e)
        cdef int p
        if planes is not None:
            with nogil:
                self._expand(s, e, True)
            for p in planes:
                with nogil:
                    _zero_plane(self.planes[p], s, e)
            return
        self._check_pb_aligned(s, e)
        with nogil:
            self._release(s, e)

    cdef void _release(self, int64_t s, int64_t e) noexcept nogil:
        # release() of all planes, [s, e) checked and pageblock aligned
        cdef int p
        cdef int64_t c, run
        cdef int64_t csize = <int64_t>1 << self.chunk_order
        cdef int64_t cs = (s + csize - 1) >> self.chunk_order   # chunks wholly inside [s, e)
        cdef int64_t ce = e >> self.chunk_order
        if ce <= cs:
            self._expand(s, e, True)
            for p in range(NPLANES):
                _zero_plane(self.planes[p], s, e)
        else:
            # the edges, then each run of chunks whose words hold bits
            if s < (cs << self.chunk_order):
                self._expand(s, cs << self.chunk_order, True)
                for p in range(NPLANES):
                    _zero_plane(self.planes[p], s, cs << self.chunk_order)
            if (ce << self.chunk_order) < e:
                self._expand(ce << self.chunk_order, e, True)
                for p in range(NPLANES):
                    _zero_plane(self.planes[p], ce << self.chunk_order, e)
            c = cs
            while c < ce:
                if self.ch[c] != CH_BITS:
                    if self.ch[c] >= CH_UNIFORM:
                        self.nr_uniform -= 1
                    self.ch[c] = CH_ZERO
                    c += 1
                    continue
                run = c
                while c < ce and self.ch[c] == CH_BITS:
                    self.ch[c] = CH_ZERO
                    c += 1
                for p in range(NPLANES):
                    _zero_plane(self.planes[p], run << self.chunk_order,
                                c << self.chunk_order)
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
            self._expand(s, e, True)
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
            self._expand(s, e, True)
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
            self._expand(s, e, True)
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
            o = self._natural_order(s)
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
        if self._find(P_HEAD, pfn, pfn + 1, True) != pfn:   # either form
            return -1
        return self._head_order_at(pfn)

    cdef int64_t _free_aligned(self, int64_t s, int64_t e, int strategy) noexcept nogil:
        # online_pages_range() for the strategies whose chunks are always
        # naturally aligned: ctz, get_order lowered to alignment, single pages
        cdef int64_t pfn = s
        cdef int order
        while pfn < e:
            if strategy == FREE_PAGE:
                order = 0
            elif strategy == FREE_CTZ:
                order = self._natural_order(pfn)
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
        with nogil:
            self._expand(s, e, True)
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
        cdef int64_t freed
        with nogil:
            freed = self._online_blocks(start, n, ppb, nr_vmemmap, zid, strategy)
        return freed

    cdef int64_t _online_blocks(self, int64_t start, int64_t n, int64_t ppb,
                                int64_t nr_vmemmap, int zid, int strategy) noexcept nogil:
        # online_blocks() once its arguments are checked
        cdef int64_t b, s, pb, freed = 0, c, c0, c1, vc
        cdef int64_t pbv = nr_vmemmap >> self.pageblock_order
        cdef int64_t pbn = ppb >> self.pageblock_order
        cdef int64_t csize = <int64_t>1 << self.chunk_order
        cdef bint whole = (start & (csize - 1)) == 0 and (ppb & (csize - 1)) == 0
        cdef bint uniform
        for b in range(n):
            s = start + b * ppb
            for pb in range(pbn):
                self.pb_mt[(s >> self.pageblock_order) + pb] = (
                    MIGRATE_UNMOVABLE if pb < pbv else MIGRATE_MOVABLE)
                self.pb_zone[(s >> self.pageblock_order) + pb] = <uint8_t>(zid + 1)
            c0 = s >> self.chunk_order
            c1 = (s + ppb) >> self.chunk_order
            uniform = whole
            if uniform:
                for c in range(c0, c1):
                    if self.ch[c] != CH_ZERO:
                        uniform = False
                        break
            if uniform:
                # the memmap pages and the natural free blocks that freeing
                # and merging every other page leaves, as descriptors
                for c in range(c0, c1):
                    vc = _chunk_vmemmap(nr_vmemmap, c - c0, self.chunk_order)
                    self.ch[c] = <uint32_t>(CH_UNIFORM + vc)
                    self.nr_uniform += 1
                    self._uniform_counts(c, 1)
                    freed += csize - vc
                continue
            self._expand(s, s + ppb, True)
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
        cdef int64_t removed
        with nogil:
            removed = self._offline_blocks(start, n, ppb, nr_vmemmap)
        return removed

    cdef int64_t _offline_blocks(self, int64_t start, int64_t n, int64_t ppb,
                                 int64_t nr_vmemmap) noexcept nogil:
        # offline_blocks() once its arguments are checked
        cdef int64_t b, s, removed = 0, c, c0, c1, vc
        cdef int64_t csize = <int64_t>1 << self.chunk_order
        cdef bint whole = (start & (csize - 1)) == 0 and (ppb & (csize - 1)) == 0
        cdef bint uniform
        for b in range(n):
            s = start + b * ppb
            c0 = s >> self.chunk_order
            c1 = (s + ppb) >> self.chunk_order
            uniform = whole
            if uniform:
                for c in range(c0, c1):
                    vc = _chunk_vmemmap(nr_vmemmap, c - c0, self.chunk_order)
                    if self.ch[c] != <uint32_t>(CH_UNIFORM + vc):
                        uniform = False
                        break
            if uniform:
                for c in range(c0, c1):
                    vc = self.ch[c] - CH_UNIFORM
                    self._uniform_counts(c, -1)
                    removed += csize - vc
                    self.ch[c] = CH_ZERO
                    self.nr_uniform -= 1
                continue
            self._expand(s, s + ppb, True)
            removed += self._remove_free(s + nr_vmemmap, s + ppb)
            clear_bits(self.planes[P_VMEMMAP], s, s + nr_vmemmap)
        self._release(start, start + n * ppb)
        return removed

    def find_zone_pageblock(self, int zid, int64_t s, int64_t e, bint reverse):
        """First (or, with reverse, last) pfn of a pageblock of [s, e) whose zone is
        zid, as the pageblock's first pfn; -1 if none."""
        self._check(s, e)
        cdef int64_t found
        with nogil:
            found = self._find_zone_pageblock(zid, s, e, reverse)
        return found

    cdef int64_t _find_zone_pageblock(self, int zid, int64_t s, int64_t e,
                                      bint reverse) noexcept nogil:
        cdef int64_t a = s >> self.pageblock_order
        cdef int64_t b = (e + (1 << self.pageblock_order) - 1) >> self.pageblock_order
        cdef int64_t pb
        cdef uint8_t want = <uint8_t>(zid + 1)
        if not reverse:
            for pb in range(a, b):
                if self.pb_zone[pb] == want:
                    return pb << self.pageblock_order
        else:
            pb = b - 1
            while pb >= a:
                if self.pb_zone[pb] == want:
                    return pb << self.pageblock_order
                pb -= 1
        return -1

    def zone_runs(self, int zid, int64_t s, int64_t e):
        """[(start, end)] pfn runs of the whole pageblocks of [s, e) (pageblock
        aligned) whose zone is zid and that are not isolated."""
        self._check(s, e)
        self._check_pb_aligned(s, e)
        cdef int64_t pb, a = s >> self.pageblock_order, b = e >> self.pageblock_order
        cdef int64_t run = -1
        cdef uint8_t want = <uint8_t>(zid + 1)
        cdef bint ok
        out = []
        for pb in range(a, b):
            ok = self.pb_zone[pb] == want and not (self.pb_mt[pb] & PB_ISOLATE)
            if ok and run < 0:
                run = pb
            elif not ok and run >= 0:
                out.append((run << self.pageblock_order, pb << self.pageblock_order))
                run = -1
        if run >= 0:
            out.append((run << self.pageblock_order, b << self.pageblock_order))
        return out

    def free_pages(self, int64_t[::1] pfns):
        """Free single allocated pages (clearing P_UNMOVABLE); runs of consecutive
        pfns are freed as aligned chunks, which merges to the same final state."""
        cdef int64_t i = 0, n = pfns.shape[0], s, e, pfn, c, last
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
                self._expand(s, e, True)
                clear_bits(self.planes[P_UNMOVABLE], s, e)
                pfn = s
                while pfn < e:
                    order = self._natural_order(pfn)
                    while pfn + (<int64_t>1 << order) > e:
                        order -= 1
                    self.free_one(pfn, order)
                    pfn += <int64_t>1 << order
            # the chunks the pages were in, once each (pfns are sorted)
            last = -1
            for i in range(n):
                c = pfns[i] >> self.chunk_order
                if c != last:
                    self._fold(c)
                    last = c

    def take_range(self, int64_t s, int64_t e):
        """Allocate every page of [s, e), which must all be free: blocks inside go
        off their lists, blocks across an edge are split (expand())."""
        self._check(s, e)
        if s >= e:
            return
        self._expand(s, e, True)
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
            self._expand(s, e, True)
            n = self._remove_free(s, e)
        return n

    # ------------------------------------------------------------ scans

    def has_unmovable(self, int64_t s, int64_t e, bint movable_zone, bint skip_vmemmap):
        """has_unmovable_pages(): first pfn of [s, e) that is PG_reserved (never a
        skipped vmemmap page) or, outside ZONE_MOVABLE, an unmovable allocation.
        Word-wise reduction over the planes; -1 if none.  A uniform chunk holds
        memmap pages and free blocks only: it is skipped, not written out."""
        self._check(s, e)
        if s >= e:
            return -1
        cdef int64_t i = s >> 6, last = (e - 1) >> 6, r = -1
        cdef uint64_t word
        cdef int wshift = self.chunk_order - 6
        cdef const uint64_t* R = self.planes[P_RESERVED]
        cdef const uint64_t* V = self.planes[P_VMEMMAP]
        cdef const uint64_t* U = self.planes[P_UNMOVABLE]
        with nogil:
            while i <= last:
                if self.ch[i >> wshift] >= CH_UNIFORM:
                    i = ((i >> wshift) + 1) << wshift
                    continue
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
        dropped the reference in MEM_GOING_OFFLINE) a PageOffline page; -1 if none.
        A uniform chunk answers from its descriptor: its first memmap page in
        range unless memmap pages are skipped (the rest of it is free)."""
        self._check(s, e)
        if s >= e:
            return -1
        cdef int64_t i = s >> 6, last = (e - 1) >> 6, r = -1, c, lo, hi
        cdef uint64_t word
        cdef int wshift = self.chunk_order - 6
        cdef const uint64_t* B = self.planes[P_BUDDY]
        cdef const uint64_t* V = self.planes[P_VMEMMAP]
        cdef const uint64_t* O = self.planes[P_OFFLINE]
        with nogil:
            while i <= last:
                c = i >> wshift
                if self.ch[c] >= CH_UNIFORM:
                    if not skip_vmemmap:
                        lo = max(s, c << self.chunk_order)
                        hi = min(e, (c << self.chunk_order) + self.ch[c] - CH_UNIFORM)
                        if lo < hi:
                            r = lo
                            break
                    i = (c + 1) << wshift
                    continue
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
        cdef int wshift = self.chunk_order - 6
        i = (s >> 6) - 1
        while i < last:
            i += 1
            if self.ch[i >> wshift] >= CH_UNIFORM:
                # every page of a uniform chunk is a memmap page or free
                i = (((i >> wshift) + 1) << wshift) - 1
                continue
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
        with nogil:
            while k < n and p < e:
                p = self._find(P_BUDDY, p, e, True)
                if p >= e:
                    break
                q = self._find(P_BUDDY, p, e, False)
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
        cdef int64_t pos = s, ch, cs, ce, lo, size = <int64_t>1 << self.chunk_order
        with nogil:
            while pos < e and k < n:
                ch = pos >> self.chunk_order
                cs = ch << self.chunk_order
                ce = cs + size
                if ce > e:
                    ce = e
                if self.ch[ch] >= CH_UNIFORM:
                    # the free pages of a uniform chunk are one run
                    lo = cs + self.ch[ch] - CH_UNIFORM
                    if lo < pos:
                        lo = pos
                    c = ce - lo if ce > lo else 0
                    while k < n and ranks[k] < seen + c:
                        o[k] = lo + ranks[k] - seen
                        k += 1
                    seen += c
                    pos = ce
                    continue
                last = (ce - 1) >> 6
                i = pos >> 6
                while i <= last and k < n:
                    word = self.planes[P_BUDDY][i]
                    if i == pos >> 6:
                        word &= lo_mask(pos)
                    if i == last:
                        word &= hi_mask(ce)
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
                pos = ce
        if k != n:
            raise ValueError("free_by_rank: rank beyond the free pages of the range")
        return out

    def first_free_block(self, int64_t s, int64_t e, int order):
        """The lowest pfn of [s, e) heading a free block of exactly ``order``,
        or -1; uniform chunks are read from their descriptor."""
        self._check(s, e)
        cdef int64_t h, r = -1
        cdef int o
        with nogil:
            h = self._find(P_HEAD, s, e, True)
            while h < e:
                o = self._head_order_at(h)
                if o == order:
                    r = h
                    break
                # free blocks do not overlap: the next head is past this one
                h = self._find(P_HEAD, min(h + (<int64_t>1 << o), e), e, True)
        return r

    def free_blocks(self, int64_t s, int64_t e):
        """(pfn, order) of the free blocks whose head is in [s, e), as two arrays."""
        self._check(s, e)
        cdef int64_t n = self.count(P_HEAD, s, e), k = 0, h
        pf = np.empty(n, dtype=np.int64)
        od = np.empty(n, dtype=np.int8)
        cdef int64_t[::1] p = pf
        cdef int8_t[::1] d = od
        cdef int o
        with nogil:
            h = self._find(P_HEAD, s, e, True)
            while h < e:
                o = self._head_order_at(h)
                p[k] = h
                d[k] = o
                k += 1
                h = self._find(P_HEAD, min(h + (<int64_t>1 << o), e), e, True)
        return pf, od
