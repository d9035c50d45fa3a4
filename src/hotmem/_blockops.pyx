# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""One memory block onlined or offlined per call, compiled: what a write of
``online_movable`` or ``offline`` to memoryN/state costs in the common case.

memory_hotplug.online_block() / offline_block() ask ``BlockOps`` first.  It
takes the block only when everything that makes the one-pass path exact holds:
the design is batchable (memory_hotplug.run_breaks), the block is in the state
for the operation, not boot memory and not a driver's (no online-page callback
or notifier to run), the zone is decided up front (memory_hotplug.run_zone for
a run of one) and, to offline, every page but the memmap is free and the arch
does not refuse it.  Then it does what online_run() / offline_run() do for one
block, with the same counters, spans and watermarks, and returns.  Otherwise
it returns None having changed nothing, and the general path, which stays the
definition, decides (and raises the errno).  tests/test_blockops.py holds the
two paths and the reference backend to the same states and errors.

init_per_zone_wmark_min() is memoised on its inputs (page_alloc): here the last
inputs and the min_free_kbytes they gave are kept in C, so an online or offline
that leaves them as they were (ZONE_MOVABLE from 6.12) only redoes
__setup_per_zone_wmarks(); when they change (a kernel zone's managed pages),
min_free_kbytes is computed here as page_alloc._min_free_kbytes() does, in
64-bit arithmetic (beyond it, page_alloc's function is called).
"""
cimport cython
import numpy as np
from libc.math cimport sqrt
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t

from hotmem._core cimport P_BUDDY, PageState

cdef extern from *:
    ctypedef long long i128 "__int128"

cdef inline bint _intersects(object z, int64_t start, int64_t nr) except -1:
    # zone_intersects()
    cdef int64_t zs = z.zone_start_pfn, sp = z.spanned_pages
    return sp != 0 and start < zs + sp and start + nr > zs


@cython.final
cdef class BlockOps:
    """Typed views of one machine's per-block and per-section arrays and its
    page state (state.py owns them all), for one-block onlines and offlines."""

    cdef PageState pages
    cdef uint8_t[::1] state, early, altmap, sec_flags
    cdef int16_t[::1] zone, nid
    cdef int32_t[::1] group
    cdef int64_t[::1] alt_free
    cdef int64_t nr_blocks, ppb, pps, pageblock_mask, pageblock_order
    cdef int64_t nr_zones, max_nr_zones
    cdef int zone_normal, zone_movable, zone_device
    cdef uint8_t sec_online, mem_online, mem_offline
    cdef int mmop_online, mmop_kernel, mmop_movable, free_get_order
    cdef dict online_types
    # arm64 7.3 refuses an offline that splits a vmemmap leaf: leaf bytes, 0 if not
    cdef int64_t leaf_bytes, struct_page_size
    # find_zone_pfn(): subsection pages
    cdef int64_t subsection_pages
    cdef int page_shift
    cdef int16_t[::1] ztype
    # design.batchable, evaluated once per design object (a fact of its class)
    cdef object design_seen
    cdef bint batchable_seen
    # onlines and offlines done here (the tests check the path was taken), and
    # how many of them computed min_free_kbytes (the watermark inputs changed)
    cdef readonly int64_t nr_onlined, nr_offlined, nr_min_free_kbytes
    # page_alloc.init_per_zone_wmark_min and __setup_per_zone_wmarks()'s
    # constants; the last inputs of init_per_zone_wmark_min() and what they gave
    cdef object wmark_min
    cdef int64_t swap_cluster_max, scale_factor, migrate_pcptypes
    cdef int64_t page_kbytes, pageblock_nr_pages
    cdef int64_t[::1] key, key_now, managed_now, wmin_now, step_now
    cdef bint key_valid
    cdef int64_t key_mfk

    def __init__(self, PageState pages, state, zone, nid, early, group, altmap, alt_free,
                 sec_flags, list zones, dict online_types, dict consts, wmark_min):
        self.pages = pages
        self.wmark_min = wmark_min
        self.swap_cluster_max = consts["SWAP_CLUSTER_MAX"]
        self.scale_factor = consts["WATERMARK_SCALE_FACTOR"]
        self.migrate_pcptypes = consts["MIGRATE_PCPTYPES"]
        self.state = state
        self.zone = zone
        self.nid = nid
        self.early = early.view(np.uint8)
        self.group = group
        self.altmap = altmap.view(np.uint8)
        self.alt_free = alt_free
        self.sec_flags = sec_flags
        self.nr_blocks = state.shape[0]
        self.ppb = consts["pages_per_block"]
        self.pps = consts["pages_per_section"]
        self.pageblock_order = consts["pageblock_order"]
        self.pageblock_mask = (<int64_t>1 << self.pageblock_order) - 1
        self.page_shift = consts["page_shift"]
        self.page_kbytes = (<int64_t>1 << self.page_shift) >> 10
        self.pageblock_nr_pages = <int64_t>1 << self.pageblock_order
        self.subsection_pages = consts["subsection_pages"]
        self.leaf_bytes = consts["vmemmap_leaf_bytes"]
        self.struct_page_size = consts["struct_page_size"]
        self.sec_online = consts["SECTION_IS_ONLINE"]
        self.mem_online = consts["MEM_ONLINE"]
        self.mem_offline = consts["MEM_OFFLINE"]
        self.mmop_online = consts["MMOP_ONLINE"]
        self.mmop_kernel = consts["MMOP_ONLINE_KERNEL"]
        self.mmop_movable = consts["MMOP_ONLINE_MOVABLE"]
        self.free_get_order = consts["FREE_GET_ORDER"]
        self.max_nr_zones = consts["MAX_NR_ZONES"]
        self.zone_normal = consts["ZONE_NORMAL"]
        self.zone_movable = consts["ZONE_MOVABLE"]
        self.zone_device = consts["ZONE_DEVICE"]
        self.online_types = online_types
        self.nr_zones = len(zones)
        self.ztype = np.array([z.ztype for z in zones], dtype=np.int16)
        # user min_free_kbytes (set, value), min_free_kbytes, thp, like highmem,
        # managed, present, high watermark of each zone up to Normal, lowmem
        nkey = 5 + 3 * sum(1 for z in zones if z.ztype <= self.zone_normal) + 1
        self.key = np.zeros(nkey, dtype=np.int64)
        self.key_now = np.zeros(nkey, dtype=np.int64)
        self.managed_now = np.zeros(self.nr_zones, dtype=np.int64)
        self.wmin_now = np.zeros(self.nr_zones, dtype=np.int64)
        self.step_now = np.zeros(self.nr_zones, dtype=np.int64)
        self.key_valid = False
        self.design_seen = None

    # ------------------------------------------------------------ checks

    cdef bint _plain(self, m, int64_t b, uint8_t want) except -1:
        # run_breaks() for a run of one: the block in state ``want``, not boot
        # memory, not a driver's; the design batchable; fast paths on
        if self.state[b] != want or self.early[b] or not m.fast_paths:
            return False
        design = m.design
        if design is not self.design_seen:
            self.batchable_seen = bool(design.batchable)
            self.design_seen = design
        return self.batchable_seen

    cdef object _group(self, m, int64_t b):
        # the block's memory group, None when it has none; False for a driver's
        cdef int32_t gid = self.group[b]
        if gid < 0:
            return None
        g = m.groups.get(gid)
        if g is not None and g.device is not None:
            return False
        return g

    cdef int64_t _nr_vmemmap(self, int64_t b) noexcept:
        return self.alt_free[b] if self.altmap[b] else 0

    # ------------------------------------------------------------ watermarks

    cdef bint _key(self, m, list zones) except -1:
        # init_per_zone_wmark_min()'s memo key into key_now (False: one it
        # cannot hold, which always goes to page_alloc), the managed pages of
        # every zone into managed_now
        cdef int64_t lowmem = 0, managed, k = 0
        cdef Py_ssize_t i
        cdef int zt
        cdef bint like = m.wmark_like_highmem
        umfk = m.user_min_free_kbytes
        if umfk is None:
            self.key_now[k] = 0
            self.key_now[k + 1] = 0
        elif type(umfk) is int and -(1 << 62) < umfk < (1 << 62):
            self.key_now[k] = 1
            self.key_now[k + 1] = umfk
        else:
            return False
        self.key_now[k + 2] = m.min_free_kbytes
        self.key_now[k + 3] = 1 if m.thp else 0
        self.key_now[k + 4] = like
        k = 5
        for i in range(self.nr_zones):
            z = zones[i]
            zt = self.ztype[i]
            managed = z.managed_pages
            self.managed_now[i] = managed
            if zt <= self.zone_normal:
                self.key_now[k] = managed
                self.key_now[k + 1] = z.present_pages
                self.key_now[k + 2] = z.wmark_high
                k += 3
            if zt != self.zone_device and (zt != self.zone_movable or not like):
                lowmem += managed
        self.key_now[k] = lowmem
        return True

    cdef bint _setup_per_zone_wmarks(self, int64_t mfk) noexcept:
        # __setup_per_zone_wmarks() for min_free_kbytes mfk over the zones whose
        # inputs _key() read: min and step of each zone into wmin_now / step_now.
        # False: a product beyond 64-bit sums (page_alloc's path has Python ints)
        cdef Py_ssize_t i
        cdef int64_t pages_min = mfk >> (self.page_shift - 10)
        cdef int64_t lowmem = self.key_now[self.key.shape[0] - 1], managed, tmp, wmin, t2
        cdef bint like = self.key_now[4]
        cdef i128 wide
        for i in range(self.nr_zones):
            managed = self.managed_now[i]
            wide = (<i128>pages_min * managed) // lowmem if lowmem else 0
            if wide > (<i128>1 << 60):
                return False
            tmp = <int64_t>wide
            if self.ztype[i] == self.zone_movable and like:
                wmin = managed // 1024
                if wmin < self.swap_cluster_max:
                    wmin = self.swap_cluster_max
                if wmin > 128:
                    wmin = 128
            else:
                wmin = tmp
            t2 = <int64_t>((<i128>managed * self.scale_factor) // 10000)
            tmp = tmp >> 2
            self.wmin_now[i] = wmin
            self.step_now[i] = t2 if t2 > tmp else tmp
        return True

    cdef int64_t _nr_free_buffer_pages(self, bint computed) noexcept:
        # nr_free_buffer_pages(): managed above the high watermark of the zones
        # up to Normal, with the high watermarks the zones hold (key_now) or
        # those _setup_per_zone_wmarks() just computed
        cdef Py_ssize_t i
        cdef int64_t n = 0, k = 5, managed, high
        for i in range(self.nr_zones):
            if self.ztype[i] > self.zone_normal:
                continue
            managed = self.key_now[k]
            high = (self.wmin_now[i] + 2 * self.step_now[i]) if computed else self.key_now[k + 2]
            if managed > high:
                n += managed - high
            k += 3
        return n

    cdef int64_t _min_free_kbytes(self) noexcept:
        # page_alloc._min_free_kbytes() from the inputs in key_now: min_free_kbytes
        # as calculate_min_free_kbytes() and khugepaged's recommendation leave it;
        # -1 where the arithmetic leaves 64 bits (page_alloc's path does it)
        cdef Py_ssize_t i
        cdef int64_t mfk = self.key_now[2], kbytes, r, nr_zones = 0, rec, k = 5
        if not self.key_now[0]:
            # calculate_min_free_kbytes(): int_sqrt(lowmem_kbytes * 16), clamped
            kbytes = self._nr_free_buffer_pages(False) * self.page_kbytes
            if kbytes >= (<int64_t>1 << 58):
                return -1
            r = <int64_t>sqrt(<double>(kbytes * 16))
            while r > 0 and r * r > kbytes * 16:
                r -= 1
            while (r + 1) * (r + 1) <= kbytes * 16:
                r += 1
            mfk = 128 if r < 128 else 262144 if r > 262144 else r
        if self.key_now[3]:
            # THP: set_recommended_min_free_kbytes() after __setup_per_zone_wmarks()
            if not self._setup_per_zone_wmarks(mfk):
                return -1
            for i in range(self.nr_zones):
                if self.ztype[i] <= self.zone_normal:
                    if self.key_now[k + 1]:
                        nr_zones += 1
                    k += 3
            rec = self.pageblock_nr_pages * nr_zones * 2
            rec += self.pageblock_nr_pages * nr_zones * self.migrate_pcptypes * self.migrate_pcptypes
            r = self._nr_free_buffer_pages(True) // 20
            if r < rec:
                rec = r
            rec <<= self.page_shift - 10
            if rec > mfk:
                mfk = rec
        return mfk

    def init_per_zone_wmark_min(self, m):
        """page_alloc.init_per_zone_wmark_min() through this memo (the same
        values; for the watermark steps of a run of blocks)."""
        self._init_per_zone_wmark_min(m, m.zones)

    cdef int _init_per_zone_wmark_min(self, m, list zones) except -1:
        """page_alloc.init_per_zone_wmark_min(), whose memo this is too: the
        inputs of the last call and the min_free_kbytes they gave, else that
        value computed from the new inputs; then __setup_per_zone_wmarks().
        Inputs that leave 64-bit arithmetic go to page_alloc's function."""
        cdef Py_ssize_t i, n = self.key.shape[0]
        cdef bint same
        cdef int64_t mfk, wmin, tmp
        if m.managed_unreserved:
            # a driver moved managed pages: page_alloc's function also brings
            # lowmem_reserve up to date (setup_per_zone_lowmem_reserve)
            self.key_valid = False
            self.wmark_min(m)
            return 0
        if not self._key(m, zones):
            self.key_valid = False
            self.wmark_min(m)
            return 0
        same = self.key_valid
        if same:
            for i in range(n):
                if self.key[i] != self.key_now[i]:
                    same = False
                    break
        if same:
            mfk = self.key_mfk
        else:
            self.nr_min_free_kbytes += 1
            mfk = self._min_free_kbytes()
            if mfk < 0:
                self.key_valid = False
                self.wmark_min(m)
                return 0
            self.key[:] = self.key_now
            self.key_mfk = mfk
            self.key_valid = True
        if not self._setup_per_zone_wmarks(mfk):
            self.wmark_min(m)
            return 0
        m.min_free_kbytes = mfk
        for i in range(self.nr_zones):
            z = zones[i]
            wmin = self.wmin_now[i]
            tmp = self.step_now[i]
            z.wmark_min = wmin
            z.wmark_low = wmin + tmp
            z.wmark_high = wmin + 2 * tmp
            z.wmark_promo = wmin + 3 * tmp
        return 0

    # ------------------------------------------------------------ spans

    cdef int64_t _find_zone_pfn(self, int zid, int64_t s, int64_t e, bint reverse) noexcept:
        # MachineState.find_zone_pfn()
        cdef int64_t pfn, sub = self.subsection_pages, r
        if s >= e:
            return -1
        pfn = self.pages._find_zone_pageblock(zid, s, e, reverse)
        if pfn < 0:
            return -1
        if not reverse:
            r = pfn // sub * sub
            return s if s > r else r
        r = (pfn + (<int64_t>1 << self.pageblock_order) + sub - 1) // sub * sub
        return (e if e < r else r) - 1

    cdef int _shrink_zone_span(self, object zone, int zid, int64_t start_pfn,
                               int64_t end_pfn) except -1:
        # memory_hotplug.shrink_zone_span()
        cdef int64_t zs = zone.zone_start_pfn
        cdef int64_t ze = zs + <int64_t>zone.spanned_pages
        cdef int64_t pfn
        if zs == start_pfn:
            pfn = self._find_zone_pfn(zid, end_pfn, ze, False)
            if pfn >= 0:
                zone.spanned_pages = ze - pfn
                zone.zone_start_pfn = pfn
            else:
                zone.zone_start_pfn = 0
                zone.spanned_pages = 0
        elif ze == end_pfn:
            pfn = self._find_zone_pfn(zid, zs, start_pfn, True)
            if pfn >= 0:
                zone.spanned_pages = pfn - zs + 1
            else:
                zone.zone_start_pfn = 0
                zone.spanned_pages = 0
        return 0

    # ------------------------------------------------------------ operations

    def online(self, m, blk, online_type):
        """memory_hotplug.online_run() of block ``blk`` into the zone run_zone()
        gives, when the one-pass path applies; returns the zone, or None with
        nothing changed."""
        if type(blk) is not int or type(online_type) is not str:
            return None
        if not 0 <= blk < self.nr_blocks:
            return None
        cdef int64_t b = blk
        if not self._plain(m, b, self.mem_offline):
            return None
        mmop_obj = self.online_types.get(online_type)
        if mmop_obj is None:
            return None
        cdef int mmop = mmop_obj
        if mmop != self.mmop_online and mmop != self.mmop_kernel and mmop != self.mmop_movable:
            return None
        g = self._group(m, b)
        if g is False:
            return None
        cdef int strategy = m.online_free_strategy
        if strategy == self.free_get_order:
            return None   # 4.20's chunks need free_range()
        cdef int64_t ppb = self.ppb, start = b * ppb
        cdef int64_t v = self._nr_vmemmap(b)
        if v & self.pageblock_mask:
            return None
        cdef list zones = m.zones
        cdef int base = self.nid[b] * self.max_nr_zones
        cdef int zt
        # run_zone()
        if mmop == self.mmop_movable:
            zone = zones[base + self.zone_movable]
        else:
            for zt in range(self.zone_normal):
                if _intersects(zones[base + zt], start, ppb):
                    return None   # DMA / DMA32 boundaries: per block
            zone = zones[base + self.zone_normal]
            if mmop == self.mmop_online and (
                    m.online_policy != "contig-zones" or m.movable_node
                    or _intersects(zones[base + self.zone_movable], start, ppb)):
                return None
        cdef int zid = zone.zid
        cdef int64_t managed0 = zone.managed_pages, present0 = zone.present_pages
        cdef int64_t zs = zone.zone_start_pfn, sp = zone.spanned_pages
        cdef int64_t old_end = zs + sp, end = start + ppb, s, freed
        # the page work, the sections and the block
        with nogil:
            freed = self.pages._online_blocks(start, 1, ppb, v, zid, strategy)
            for s in range(start // self.pps, end // self.pps):
                self.sec_flags[s] |= self.sec_online
        self.zone[b] = <int16_t>zid
        self.state[b] = self.mem_online
        # resize_zone_range()
        if sp == 0 or start < zs:
            zs = start
            zone.zone_start_pfn = zs
        zone.spanned_pages = (end if end > old_end else old_end) - zs
        if g is not None:
            if zid % self.max_nr_zones == self.zone_movable:
                g.present_movable_pages += ppb
            else:
                g.present_kernel_pages += ppb
        # the watermarks see the memmap pages outside present (they join it
        # after online_pages(), in memory_block_online())
        zone.managed_pages = managed0 + freed
        zone.present_pages = present0 - v + ppb
        self._init_per_zone_wmark_min(m, zones)
        zone.present_pages = present0 + ppb
        self.nr_onlined += 1
        return zone

    def offline(self, m, blk):
        """memory_hotplug.offline_run() of block ``blk`` when the one-pass path
        applies (all its pages but the memmap free, nothing refusing it);
        returns True, or False with nothing changed."""
        if type(blk) is not int or not 0 <= blk < self.nr_blocks:
            return False
        cdef int64_t b = blk
        if not self._plain(m, b, self.mem_online):
            return False
        cdef int zid = self.zone[b]
        if zid < 0:
            return False
        g = self._group(m, b)
        if g is False:
            return False
        cdef int64_t ppb = self.ppb, start = b * ppb, end = start + ppb, s, removed
        cdef int64_t v = self._nr_vmemmap(b)
        cdef int64_t leaf = self.leaf_bytes, a = self.struct_page_size
        if leaf and (((start + v) * a) % leaf or (end * a) % leaf):
            return False   # splits_vmemmap_leaf(): the arch refuses it (EPERM)
        if self.pages._count(P_BUDDY, start, end) != ppb - v:
            return False   # something is allocated
        cdef list zones = m.zones
        zone = zones[zid]
        cdef int64_t managed0 = zone.managed_pages, present0 = zone.present_pages
        with nogil:
            removed = self.pages._offline_blocks(start, 1, ppb, v)
            for s in range(start // self.pps, end // self.pps):
                self.sec_flags[s] &= ~self.sec_online
        self.zone[b] = -1
        self.state[b] = self.mem_offline
        if g is not None:
            if zid % self.max_nr_zones == self.zone_movable:
                g.present_movable_pages -= ppb
            else:
                g.present_kernel_pages -= ppb
        zone.managed_pages = managed0 - removed
        zone.present_pages = present0 - ppb
        self._init_per_zone_wmark_min(m, zones)
        # the span shrinks to the nearest memory still online in the zone
        cdef int64_t zs = zone.zone_start_pfn
        cdef int64_t ze = zs + <int64_t>zone.spanned_pages
        if start <= zs and end >= ze:
            zone.zone_start_pfn = 0
            zone.spanned_pages = 0
        elif start <= zs:
            self._shrink_zone_span(zone, zid, zs, end)
        elif end >= ze:
            self._shrink_zone_span(zone, zid, start, ze)
        self.nr_offlined += 1
        return True
