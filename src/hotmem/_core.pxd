# C-level API of hotmem's compiled core: bit-planes over pfns and the buddy
# allocator's hot loops.  See _core.pyx for the meaning of each plane.
from libc.stdint cimport uint64_t, int64_t, uint8_t, uint32_t

cdef enum:
    P_VMEMMAP = 0      # self-hosted memmap page (mainline) / PageVmemmap (RFC)
    P_RESERVED = 1     # PG_reserved
    P_BUDDY = 2        # page belongs to a free buddy block (head or tail)
    P_HEAD = 3         # first page of a free buddy block (PageBuddy)
    P_UNMOVABLE = 4    # allocated, unmovable (kernel allocation)
    P_OFFLINE = 5      # PageOffline: present, owned by a driver, not in the buddy
    P_DIRTY = 6        # PG_dirty on a PageOffline page: never onlined (virtio-mem)
    NPLANES = 7

cdef enum:
    MIGRATE_UNMOVABLE = 0
    MIGRATE_MOVABLE = 1
    MIGRATE_RECLAIMABLE = 2
    MIGRATE_HIGHATOMIC = 3
    MIGRATE_CMA = 4
    MIGRATE_ISOLATE = 5
    MIGRATE_TYPES = 6
    PB_ISOLATE = 0x80

cdef enum:
    FREE_CTZ = 0            # min(MAX_PAGE_ORDER, ctz(pfn)) chunks (5.x .. now)
    FREE_GET_ORDER = 1      # 4.20 online_pages_blocks: order from the remaining size
    FREE_GET_ORDER_ALIGNED = 2  # the 2019 fix: that order, lowered until pfn is aligned
    FREE_PAGE = 3           # one page at a time (before 2019)

cdef enum:
    CH_ZERO = 0        # every plane word of the chunk is zero
    CH_BITS = 1        # the planes hold the chunk's state
    CH_UNIFORM = 2     # CH_UNIFORM + v: v memmap pages, the rest free in natural blocks

cdef class PageState:
    cdef uint64_t* planes[NPLANES]
    cdef uint32_t* ch
    cdef size_t ch_bytes
    cdef readonly int chunk_order
    cdef readonly int64_t nr_chunks
    cdef readonly int64_t nr_uniform
    cdef uint8_t* pb_mt
    cdef uint8_t* pb_zone
    cdef size_t plane_bytes
    cdef size_t pb_bytes
    cdef readonly int64_t nr_pfns
    cdef readonly int64_t nr_pageblocks
    cdef readonly int pageblock_order
    cdef readonly int max_order
    cdef readonly int n_zids
    cdef readonly object nr_free
    cdef int64_t[:, :, ::1] _nr_free

    cdef void _check(self, int64_t s, int64_t e) except *
    cdef void _expand(self, int64_t s, int64_t e, bint write) noexcept nogil
    cdef void _write_uniform(self, int64_t c) noexcept nogil
    cdef bint _fold(self, int64_t c) noexcept nogil
    cdef void _uniform_counts(self, int64_t c, int64_t sign) noexcept nogil
    cdef bint _u_test(self, int64_t c, int plane, int64_t pfn) noexcept nogil
    cdef int _natural_order(self, int64_t rel) noexcept nogil
    cdef int64_t _u_next_head(self, int64_t cs, int64_t v, int64_t pos) noexcept nogil
    cdef int _head_order_at(self, int64_t h) noexcept nogil
    cdef int64_t _find(self, int plane, int64_t s, int64_t e, bint want) noexcept nogil
    cdef int64_t _uniform_count(self, int64_t c, int plane, int64_t a, int64_t b) noexcept nogil
    cdef void _check_pb_aligned(self, int64_t s, int64_t e) except *
    cdef int list_of(self, int64_t pfn) noexcept nogil
    cdef int zone_of(self, int64_t pfn) noexcept nogil
    cdef int head_order(self, int64_t h) noexcept nogil
    cdef void add_block(self, int64_t pfn, int order) noexcept nogil
    cdef void del_block(self, int64_t pfn, int order) noexcept nogil
    cdef void free_one(self, int64_t pfn, int order) noexcept nogil
    cdef void insert_natural(self, int64_t s, int64_t e) noexcept nogil
    cdef int64_t head_containing(self, int64_t pfn) noexcept nogil
    cdef void split_at(self, int64_t pfn) noexcept nogil
    cdef void move_pageblock_counts(self, int64_t pb, int new_list) noexcept nogil
    cdef int64_t _free_aligned(self, int64_t s, int64_t e, int strategy) noexcept nogil
    cdef int64_t _remove_free(self, int64_t s, int64_t e) noexcept nogil
    # the work of count / release (all planes) / online_blocks / offline_blocks /
    # find_zone_pageblock once the arguments are checked (for _blockops)
    cdef int64_t _count(self, int plane, int64_t s, int64_t e) noexcept nogil
    cdef void _release(self, int64_t s, int64_t e) noexcept nogil
    cdef int64_t _online_blocks(self, int64_t start, int64_t n, int64_t ppb,
                                int64_t nr_vmemmap, int zid, int strategy) noexcept nogil
    cdef int64_t _offline_blocks(self, int64_t start, int64_t n, int64_t ppb,
                                 int64_t nr_vmemmap) noexcept nogil
    cdef int64_t _find_zone_pageblock(self, int zid, int64_t s, int64_t e,
                                      bint reverse) noexcept nogil
