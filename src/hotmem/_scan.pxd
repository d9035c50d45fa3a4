# C-level API of hotmem's scan-strategy kernels (see _scan.pyx): nogil loops
# over bit-plane words (bit i of word k is pfn base + 64*k + i, the layout of
# _core); the bit helpers are in _bits.pxd.
from libc.stdint cimport uint64_t, int64_t


cdef int64_t first_hit_per_page(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                                int64_t s, int64_t e, bint use_y, bint use_z) noexcept nogil
cdef int64_t first_hit_words(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                             int64_t s, int64_t e, bint use_y, bint use_z,
                             bint invert_x) noexcept nogil
