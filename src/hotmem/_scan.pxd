# C-level API of hotmem's scan-strategy kernels (see _scan.pyx).  They work on
# copies of PageState bit-planes as arrays of 64-bit words; bit i of word k is
# pfn base + 64*k + i, the layout of _core.
from libc.stdint cimport uint64_t, int64_t


cdef inline bint page_test(const uint64_t* w, int64_t i) noexcept nogil:
    # PageVmemmap(pfn_to_page(pfn)) of the simulator: one bit of one page.
    # Inline here (not the cimported _core.test_bit, which would be a call
    # through a function pointer) so the per-page loop is as fast as a
    # per-page loop can be.
    return (w[i >> 6] >> (i & 63)) & 1


cdef int64_t first_hit_per_page(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                                int64_t s, int64_t e, bint use_y, bint use_z) noexcept nogil
cdef int64_t first_hit_words(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                             int64_t s, int64_t e, bint use_y, bint use_z,
                             bint invert_x) noexcept nogil
