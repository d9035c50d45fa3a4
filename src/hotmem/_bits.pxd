# The bit operations of hotmem's compiled core, in one place: inline helpers
# over bit-planes of 64-bit words (bit i of word k is pfn 64*k + i).  _core
# and _scan cimport them; nothing else defines them.
from libc.stdint cimport uint64_t, int64_t
from libc.string cimport memset

cdef extern from *:
    """
    #define HOTMEM_ALL_ONES 0xFFFFFFFFFFFFFFFFULL
    """
    uint64_t ALL_ONES "HOTMEM_ALL_ONES"
    int __builtin_ctzll(unsigned long long) nogil
    int __builtin_clzll(unsigned long long) nogil
    int __builtin_popcountll(unsigned long long) nogil


cdef inline bint test_bit(const uint64_t* w, int64_t i) noexcept nogil:
    return (w[i >> 6] >> (i & 63)) & 1


cdef inline uint64_t lo_mask(int64_t s) noexcept nogil:
    # bits s&63 .. 63 of a word
    return ALL_ONES << (s & 63)


cdef inline uint64_t hi_mask(int64_t e) noexcept nogil:
    # bits 0 .. (e-1)&63 of a word (e exclusive, e > 0)
    return ALL_ONES >> (63 - ((e - 1) & 63))


cdef inline void set_bits(uint64_t* w, int64_t s, int64_t e) noexcept nogil:
    if s >= e:
        return
    cdef int64_t ws = s >> 6, we = (e - 1) >> 6
    if ws == we:
        w[ws] |= lo_mask(s) & hi_mask(e)
        return
    w[ws] |= lo_mask(s)
    if we > ws + 1:
        memset(&w[ws + 1], 0xFF, (we - ws - 1) * 8)
    w[we] |= hi_mask(e)


cdef inline void clear_bits(uint64_t* w, int64_t s, int64_t e) noexcept nogil:
    if s >= e:
        return
    cdef int64_t ws = s >> 6, we = (e - 1) >> 6
    if ws == we:
        w[ws] &= ~(lo_mask(s) & hi_mask(e))
        return
    w[ws] &= ~lo_mask(s)
    if we > ws + 1:
        memset(&w[ws + 1], 0, (we - ws - 1) * 8)
    w[we] &= ~hi_mask(e)


cdef inline int64_t count_bits(const uint64_t* w, int64_t s, int64_t e) noexcept nogil:
    if s >= e:
        return 0
    cdef int64_t ws = s >> 6, we = (e - 1) >> 6, i, n = 0
    if ws == we:
        return __builtin_popcountll(w[ws] & lo_mask(s) & hi_mask(e))
    n = __builtin_popcountll(w[ws] & lo_mask(s))
    for i in range(ws + 1, we):
        n += __builtin_popcountll(w[i])
    n += __builtin_popcountll(w[we] & hi_mask(e))
    return n


cdef inline int64_t find_next_set(const uint64_t* w, int64_t s, int64_t e) noexcept nogil:
    # first set bit in [s, e), or e
    if s >= e:
        return e
    cdef int64_t i = s >> 6, last = (e - 1) >> 6, r
    cdef uint64_t word = w[i] & lo_mask(s)
    while True:
        if word:
            r = (i << 6) + __builtin_ctzll(word)
            return r if r < e else e
        i += 1
        if i > last:
            return e
        word = w[i]


cdef inline int64_t find_next_zero(const uint64_t* w, int64_t s, int64_t e) noexcept nogil:
    # first clear bit in [s, e), or e
    if s >= e:
        return e
    cdef int64_t i = s >> 6, last = (e - 1) >> 6, r
    cdef uint64_t word = ~w[i] & lo_mask(s)
    while True:
        if word:
            r = (i << 6) + __builtin_ctzll(word)
            return r if r < e else e
        i += 1
        if i > last:
            return e
        word = ~w[i]


cdef inline int64_t find_prev_set(const uint64_t* w, int64_t s, int64_t lo) noexcept nogil:
    # last set bit in [lo, s], or -1
    if s < lo:
        return -1
    cdef int64_t i = s >> 6, lw = lo >> 6, r
    cdef uint64_t word = w[i] & (ALL_ONES >> (63 - (s & 63)))
    while True:
        if word:
            r = (i << 6) + 63 - __builtin_clzll(word)
            return r if r >= lo else -1
        if i <= lw:
            return -1
        i -= 1
        word = w[i]


cdef inline int ctz64(int64_t x) noexcept nogil:
    return 63 if x == 0 else __builtin_ctzll(<uint64_t>x)


cdef inline int get_order(int64_t nr_pages) noexcept nogil:
    # the kernel's get_order() on a byte size, expressed in pages: ceil(log2(n))
    if nr_pages <= 1:
        return 0
    return 64 - __builtin_clzll(<uint64_t>(nr_pages - 1))
