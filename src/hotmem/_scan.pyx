# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Scan-strategy kernels: the same questions answered page by page and word by word.

Each kernel is a nogil loop over plane words.  The ``*_live`` entry points run
it on a machine's live ``PageState`` planes (cimported, no copy); the others
on plain arrays (copies of planes, or per-section / per-block counters), so
the strategies can be timed side by side on identical input, and the
pure-Python reference backend can be scanned too.  Pfns of the array entry
points are relative to the first word of the arrays; callers in
``hotmem.strategies`` translate.
"""
from libc.stdint cimport uint64_t, int64_t, int32_t

from hotmem._bits cimport ALL_ONES, hi_mask, lo_mask, test_bit
from hotmem._core cimport P_BUDDY, P_RESERVED, P_UNMOVABLE, P_VMEMMAP, PageState

cdef extern from *:
    """
    /* Popcount of n words.  Built without -march, __builtin_popcountll is a
       dozen-instruction bit trick (6x slower than a streaming read on the dev
       machine); a second copy compiled for the POPCNT instruction is picked at
       run time where the CPU has it.  Four accumulators break the dependency
       chain. */
    #define HM_POPCOUNT_BODY \
        int64_t a = 0, b = 0, c = 0, d = 0, i = 0; \
        for (; i + 4 <= n; i += 4) { \
            a += __builtin_popcountll(w[i]); b += __builtin_popcountll(w[i + 1]); \
            c += __builtin_popcountll(w[i + 2]); d += __builtin_popcountll(w[i + 3]); \
        } \
        for (; i < n; i++) a += __builtin_popcountll(w[i]); \
        return a + b + c + d;
    static int64_t hm_popcount_generic(const uint64_t* w, int64_t n) { HM_POPCOUNT_BODY }
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __attribute__((target("popcnt")))
    static int64_t hm_popcount_popcnt(const uint64_t* w, int64_t n) { HM_POPCOUNT_BODY }
    static int hm_have_popcnt = -1;
    static int64_t hm_popcount_words(const uint64_t* w, int64_t n) {
        if (hm_have_popcnt < 0) {
            __builtin_cpu_init();
            hm_have_popcnt = __builtin_cpu_supports("popcnt") ? 1 : 0;
        }
        return hm_have_popcnt ? hm_popcount_popcnt(w, n) : hm_popcount_generic(w, n);
    }
    #else
    static int hm_have_popcnt = 0;
    static int64_t hm_popcount_words(const uint64_t* w, int64_t n) {
        return hm_popcount_generic(w, n);
    }
    #endif
    """
    int64_t popcount_words "hm_popcount_words"(const uint64_t* w, int64_t n) nogil
    int have_popcnt "hm_have_popcnt"
    int __builtin_ctzll(unsigned long long) nogil
    int __builtin_popcountll(unsigned long long) nogil


cdef void _check_range(object words, int64_t s, int64_t e) except *:
    if s < 0 or s > e or e > 64 * len(words):
        raise IndexError(f"pfn range [{s:#x}, {e:#x}) outside the {len(words)} words given")


# ---------------------------------------------------------------- vmemmap per section

cdef void _vmemmap_per_page(const uint64_t* V, int64_t nr_sections, int64_t pps,
                            int64_t* out) noexcept nogil:
    cdef int64_t sec, pfn, base, n
    for sec in range(nr_sections):
        base = sec * pps
        n = 0
        for pfn in range(base, base + pps):
            if test_bit(V, pfn):
                n += 1
        out[sec] = n


cdef void _vmemmap_wordwise(const uint64_t* V, int64_t nr_sections, int64_t pps,
                            int64_t* out) noexcept nogil:
    cdef int64_t sec, wps = pps >> 6
    for sec in range(nr_sections):
        out[sec] = popcount_words(V + sec * wps, wps)


cdef void _vmemmap_prefix(const uint64_t* V, int64_t nr_sections, int64_t pps,
                          int64_t* out) noexcept nogil:
    cdef int64_t sec, i, base, end, wps = pps >> 6
    for sec in range(nr_sections):
        base = sec * wps
        end = base + wps
        i = base
        while i < end and V[i] == ALL_ONES:
            i += 1
        if i == end:
            out[sec] = pps
        else:
            out[sec] = ((i - base) << 6) + __builtin_ctzll(~V[i])


cdef int _vmemmap_kernel(const uint64_t* V, int which, int64_t nr_sections, int64_t pps,
                         int64_t* out) noexcept nogil:
    if which == 0:
        _vmemmap_per_page(V, nr_sections, pps, out)
    elif which == 1:
        _vmemmap_wordwise(V, nr_sections, pps, out)
    else:
        _vmemmap_prefix(V, nr_sections, pps, out)
    return 0


cdef void _check_sections(str name, int which, int64_t nr_words, int64_t nr_sections,
                          int64_t pps, int64_t nr_out) except *:
    if which and pps & 63:
        raise ValueError(f"{name}: pages_per_section must be a multiple of 64")
    if nr_sections * pps > 64 * nr_words or nr_out < nr_sections:
        raise IndexError(f"{name}: arrays shorter than the sections asked for")


def vmemmap_per_page(const uint64_t[::1] vmemmap, int64_t nr_sections,
                     int64_t pages_per_section, int64_t[::1] out):
    """The RFC's loop: test PageVmemmap on every pfn of every section and count.

    ``out[k]`` gets the vmemmap pages of section k (which, hotplug keeps it so,
    are the first pages of the section)."""
    _check_sections("vmemmap_per_page", 0, vmemmap.shape[0], nr_sections,
                    pages_per_section, out.shape[0])
    if nr_sections <= 0:
        return
    with nogil:
        _vmemmap_per_page(&vmemmap[0], nr_sections, pages_per_section, &out[0])


def vmemmap_wordwise(const uint64_t[::1] vmemmap, int64_t nr_sections,
                     int64_t pages_per_section, int64_t[::1] out):
    """The same count, 64 pages per load: popcount over every word of every section
    (it still looks at every page, so it answers what the RFC's loop answers)."""
    _check_sections("vmemmap_wordwise", 1, vmemmap.shape[0], nr_sections,
                    pages_per_section, out.shape[0])
    if nr_sections <= 0:
        return
    with nogil:
        _vmemmap_wordwise(&vmemmap[0], nr_sections, pages_per_section, &out[0])


def vmemmap_prefix(const uint64_t[::1] vmemmap, int64_t nr_sections,
                   int64_t pages_per_section, int64_t[::1] out):
    """Word-wise, relying on the layout: the length of the run of vmemmap pages at
    each section start, found with ctz of the first word that is not all ones.
    Reads m/64 + 1 words per section instead of all of them."""
    _check_sections("vmemmap_prefix", 2, vmemmap.shape[0], nr_sections,
                    pages_per_section, out.shape[0])
    if nr_sections <= 0:
        return
    with nogil:
        _vmemmap_prefix(&vmemmap[0], nr_sections, pages_per_section, &out[0])


VMEMMAP_KERNELS = {"per_page": 0, "wordwise": 1, "prefix": 2}


def vmemmap_live(PageState pages, str strategy, int64_t start_pfn, int64_t nr_sections,
                 int64_t pages_per_section, int64_t[::1] out):
    """A plane strategy (per_page, wordwise, prefix) on the live vmemmap plane of
    ``pages``, from the section at start_pfn (64-aligned): no copy."""
    cdef int which = VMEMMAP_KERNELS[strategy]
    if start_pfn < 0 or start_pfn & 63:
        raise ValueError("vmemmap_live: start_pfn must be a non-negative multiple of 64")
    if start_pfn + nr_sections * pages_per_section > pages.nr_pfns:
        raise IndexError("vmemmap_live: sections beyond the machine")
    _check_sections("vmemmap_live", which, (pages.nr_pfns + 63) >> 6, nr_sections,
                    pages_per_section, out.shape[0])
    if nr_sections <= 0:
        return
    # uniform chunks are written out once; from then on the planes are read
    pages.expand(start_pfn, start_pfn + nr_sections * pages_per_section)
    cdef const uint64_t* V = pages.planes[P_VMEMMAP] + (start_pfn >> 6)
    with nogil:
        _vmemmap_kernel(V, which, nr_sections, pages_per_section, &out[0])


def section_counts(const uint64_t[::1] vmemmap, int64_t nr_sections,
                   int64_t pages_per_section, int32_t[::1] out):
    """Build (or rebuild) a per-section summary array from the plane."""
    if pages_per_section & 63:
        raise ValueError("section_counts: pages_per_section must be a multiple of 64")
    if nr_sections * pages_per_section > 64 * vmemmap.shape[0] or out.shape[0] < nr_sections:
        raise IndexError("section_counts: arrays shorter than the sections asked for")
    cdef int64_t sec, wps = pages_per_section >> 6
    if nr_sections <= 0:
        return
    cdef const uint64_t* V = &vmemmap[0]
    with nogil:
        for sec in range(nr_sections):
            out[sec] = <int32_t>popcount_words(V + sec * wps, wps)


def vmemmap_from_summary(const int32_t[::1] summary, int64_t first_section,
                         int64_t nr_sections, int64_t[::1] out):
    """Per-section summary: one counter read per section, O(sections)."""
    if first_section < 0 or first_section + nr_sections > summary.shape[0] \
            or out.shape[0] < nr_sections:
        raise IndexError("vmemmap_from_summary: sections outside the summary")
    cdef int64_t k
    with nogil:
        for k in range(nr_sections):
            out[k] = summary[first_section + k]


def vmemmap_from_blocks(const int64_t[::1] nr_vmemmap_pages, int64_t first_section,
                        int64_t nr_sections, int64_t sections_per_block,
                        int64_t pages_per_section, int64_t[::1] out):
    """Per-block metadata (mainline: memory_block->nr_vmemmap_pages, altmap->free):
    the block's vmemmap pages are its first pages, so section j of a block has
    clamp(nr - j * pages_per_section, 0, pages_per_section).  One read per block."""
    if first_section < 0 or out.shape[0] < nr_sections or sections_per_block <= 0 or \
            (first_section + nr_sections + sections_per_block - 1) // sections_per_block \
            > nr_vmemmap_pages.shape[0]:
        raise IndexError("vmemmap_from_blocks: sections outside the block array")
    cdef int64_t k = 0, j, blk, left
    with nogil:
        blk = first_section // sections_per_block
        j = first_section - blk * sections_per_block
        while k < nr_sections:
            left = nr_vmemmap_pages[blk] - j * pages_per_section
            while j < sections_per_block and k < nr_sections:
                out[k] = 0 if left <= 0 else (pages_per_section if left > pages_per_section
                                              else left)
                left -= pages_per_section
                j += 1
                k += 1
            j = 0
            blk += 1


# ---------------------------------------------------------------- isolation checks

cdef int64_t first_hit_per_page(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                                int64_t s, int64_t e, bint use_y, bint use_z) noexcept nogil:
    # first pfn with X set and (when use_y) Y clear, or (when use_z) Z set:
    # _core.PageState.has_unmovable's R & ~V | U, one page at a time
    cdef int64_t pfn
    for pfn in range(s, e):
        if test_bit(X, pfn) and not (use_y and test_bit(Y, pfn)):
            return pfn
        if use_z and test_bit(Z, pfn):
            return pfn
    return -1


cdef inline uint64_t _hit_word(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                               int64_t i, bint use_y, bint use_z,
                               bint invert_x) noexcept nogil:
    cdef uint64_t word = ~X[i] if invert_x else X[i]
    if use_y:
        word &= ~Y[i]
    if use_z:
        word |= Z[i]
    return word


cdef int64_t first_hit_words(const uint64_t* X, const uint64_t* Y, const uint64_t* Z,
                             int64_t s, int64_t e, bint use_y, bint use_z,
                             bint invert_x) noexcept nogil:
    # the same question, 64 pages per word: the edge words are masked, the
    # words between them are tested four at a time
    if s >= e:
        return -1
    cdef int64_t i = s >> 6, last = (e - 1) >> 6
    cdef uint64_t word = _hit_word(X, Y, Z, i, use_y, use_z, invert_x) & lo_mask(s)
    if i == last:
        word &= hi_mask(e)
    if word:
        return (i << 6) + __builtin_ctzll(word)
    if i == last:
        return -1
    i += 1
    while i + 4 <= last:
        if (_hit_word(X, Y, Z, i, use_y, use_z, invert_x)
                | _hit_word(X, Y, Z, i + 1, use_y, use_z, invert_x)
                | _hit_word(X, Y, Z, i + 2, use_y, use_z, invert_x)
                | _hit_word(X, Y, Z, i + 3, use_y, use_z, invert_x)):
            break
        i += 4
    while i < last:
        word = _hit_word(X, Y, Z, i, use_y, use_z, invert_x)
        if word:
            return (i << 6) + __builtin_ctzll(word)
        i += 1
    word = _hit_word(X, Y, Z, last, use_y, use_z, invert_x) & hi_mask(e)
    if word:
        return (last << 6) + __builtin_ctzll(word)
    return -1


def has_unmovable_per_page(const uint64_t[::1] reserved, const uint64_t[::1] vmemmap,
                           const uint64_t[::1] unmovable, int64_t s, int64_t e,
                           bint movable_zone, bint skip_vmemmap):
    """has_unmovable_pages() page by page: the first pfn of [s, e) that is
    PG_reserved (vmemmap pages skipped when asked) or, outside ZONE_MOVABLE, an
    unmovable allocation; -1 if none."""
    _check_range(reserved, s, e)
    _check_range(vmemmap, s, e)
    _check_range(unmovable, s, e)
    cdef int64_t r
    with nogil:
        r = first_hit_per_page(&reserved[0], &vmemmap[0], &unmovable[0], s, e,
                               skip_vmemmap, not movable_zone) if s < e else -1
    return r


def has_unmovable_wordwise(const uint64_t[::1] reserved, const uint64_t[::1] vmemmap,
                           const uint64_t[::1] unmovable, int64_t s, int64_t e,
                           bint movable_zone, bint skip_vmemmap):
    """has_unmovable_pages() as a reduction over the planes, 64 pages per word."""
    _check_range(reserved, s, e)
    _check_range(vmemmap, s, e)
    _check_range(unmovable, s, e)
    cdef int64_t r
    with nogil:
        r = first_hit_words(&reserved[0], &vmemmap[0], &unmovable[0], s, e,
                            skip_vmemmap, not movable_zone, False) if s < e else -1
    return r


def first_not_free_per_page(const uint64_t[::1] buddy, const uint64_t[::1] vmemmap,
                            int64_t s, int64_t e, bint skip_vmemmap):
    """test_pages_isolated() page by page: the first pfn of [s, e) that is not free
    (vmemmap pages skipped when asked); -1 if all are."""
    _check_range(buddy, s, e)
    _check_range(vmemmap, s, e)
    cdef int64_t pfn, r = -1
    cdef const uint64_t* B
    cdef const uint64_t* V
    if s < e:
        B = &buddy[0]
        V = &vmemmap[0]
        with nogil:
            for pfn in range(s, e):
                if not test_bit(B, pfn) and not (skip_vmemmap and test_bit(V, pfn)):
                    r = pfn
                    break
    return r


def first_not_free_wordwise(const uint64_t[::1] buddy, const uint64_t[::1] vmemmap,
                            int64_t s, int64_t e, bint skip_vmemmap):
    """test_pages_isolated() as a reduction: ~buddy & ~vmemmap, word by word."""
    _check_range(buddy, s, e)
    _check_range(vmemmap, s, e)
    cdef int64_t r
    with nogil:
        r = first_hit_words(&buddy[0], &vmemmap[0], NULL, s, e, skip_vmemmap, False,
                            True) if s < e else -1
    return r


def has_unmovable_live(PageState pages, int64_t s, int64_t e, bint movable_zone,
                       bint skip_vmemmap, bint per_page):
    """has_unmovable_pages() on the live planes of ``pages``, page by page or word-wise."""
    if s < 0 or e > pages.nr_pfns or s > e:
        raise IndexError(f"pfn range [{s:#x}, {e:#x}) outside the machine")
    pages.expand(s, e)
    cdef const uint64_t* R = pages.planes[P_RESERVED]
    cdef const uint64_t* V = pages.planes[P_VMEMMAP]
    cdef const uint64_t* U = pages.planes[P_UNMOVABLE]
    cdef int64_t r = -1
    if s < e:
        with nogil:
            if per_page:
                r = first_hit_per_page(R, V, U, s, e, skip_vmemmap, not movable_zone)
            else:
                r = first_hit_words(R, V, U, s, e, skip_vmemmap, not movable_zone, False)
    return r


def first_not_free_live(PageState pages, int64_t s, int64_t e, bint skip_vmemmap,
                        bint per_page):
    """test_pages_isolated() on the live planes of ``pages``."""
    if s < 0 or e > pages.nr_pfns or s > e:
        raise IndexError(f"pfn range [{s:#x}, {e:#x}) outside the machine")
    pages.expand(s, e)
    cdef const uint64_t* B = pages.planes[P_BUDDY]
    cdef const uint64_t* V = pages.planes[P_VMEMMAP]
    cdef int64_t pfn, r = -1
    if s < e:
        with nogil:
            if per_page:
                for pfn in range(s, e):
                    if not test_bit(B, pfn) and not (skip_vmemmap and test_bit(V, pfn)):
                        r = pfn
                        break
            else:
                r = first_hit_words(B, V, NULL, s, e, skip_vmemmap, False, True)
    return r


# ---------------------------------------------------------------- bandwidth

def popcnt_instruction():
    """Whether the popcount kernels use the CPU's POPCNT instruction."""
    cdef uint64_t w = 0
    popcount_words(&w, 1)   # runs the CPU check
    return bool(have_popcnt)


def read_words(const uint64_t[::1] words):
    """OR of all words, four independent accumulators: a pure streaming read, the
    yardstick for the memory-bandwidth bound."""
    cdef int64_t i, n = words.shape[0], n4 = n & ~(<int64_t>3)
    cdef uint64_t a = 0, b = 0, c = 0, d = 0
    with nogil:
        for i in range(0, n4, 4):
            a |= words[i]
            b |= words[i + 1]
            c |= words[i + 2]
            d |= words[i + 3]
        for i in range(n4, n):
            a |= words[i]
    return a | b | c | d
