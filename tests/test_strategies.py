"""Every scan strategy gives the same answer as every other and as the pure-Python
reference: vmemmap pages per section, isolation checks, freeing to the buddy."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotmem import _core, _scan
from hotmem import strategies as S
from hotmem.machine import Machine
from hotmem.reference import RefPageState

ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def plane_from_ranges(nr_pfns, ranges):
    """A bit-plane (uint64 words) with the pfns of the given ranges set."""
    bits = np.zeros(-(-nr_pfns // 64) * 64, dtype=np.uint8)
    for s, e in ranges:
        bits[s:e] = 1
    return np.packbits(bits, bitorder="little").view(np.uint64).copy()


def plane_from_pfns(nr_pfns, pfns):
    return plane_from_ranges(nr_pfns, [(p, p + 1) for p in pfns])


# ---------------------------------------------------------------- vmemmap per section

def layout(nr_blocks, sections_per_block, pps, nr_vmemmap):
    """Plane words and per-block counts for blocks whose first nr_vmemmap[b]
    pages are vmemmap pages (what hotplug produces)."""
    bp = sections_per_block * pps
    nr = np.asarray(nr_vmemmap, dtype=np.int64)
    words = plane_from_ranges(nr_blocks * bp, [(b * bp, b * bp + int(n)) for b, n in enumerate(nr)])
    return words, nr


def all_vmemmap_answers(words, nr, first_sec, nsec, spb, pps):
    """{strategy: answer} for sections [first_sec, first_sec + nsec)."""
    total = len(nr) * spb
    summary = S.SectionSummary.from_words(words, total, pps).counts
    sub = words[first_sec * pps // 64:(first_sec + nsec) * pps // 64]
    out = {}
    for strategy in S.VMEMMAP_STRATEGIES:
        out[strategy] = S.vmemmap_per_section(
            strategy, nr_sections=nsec, pages_per_section=pps, vmemmap=sub,
            first_section=first_sec, summary=summary, nr_vmemmap_pages=nr,
            sections_per_block=spb).tolist()
    out["reference"] = S.ref_vmemmap_per_section(sub, nsec, pps).tolist()
    return out


def assert_all_equal(answers):
    first = next(iter(answers.values()))
    bad = {k: v for k, v in answers.items() if v != first}
    assert not bad, f"strategies disagree: {answers}"


@pytest.mark.parametrize("spb", [1, 2, 4])
def test_vmemmap_edge_cases(spb):
    pps = 128
    bp = spb * pps
    # none, one page, a word edge, a partial section, exactly one section, more
    # than a section, the whole block
    cases = [0, 1, 63, 64, 65, 100, pps - 1, pps, min(pps + 1, bp), bp]
    words, nr = layout(len(cases), spb, pps, cases)
    ans = all_vmemmap_answers(words, nr, 0, len(cases) * spb, spb, pps)
    assert_all_equal(ans)
    expect = []
    for n in cases:
        expect += [max(0, min(pps, n - j * pps)) for j in range(spb)]
    assert ans["reference"] == expect


@settings(max_examples=60, deadline=None)
@given(data=st.data(), spb=st.sampled_from([1, 2, 3, 8]), pps=st.sampled_from([64, 128, 512]),
       nblocks=st.integers(1, 9))
def test_vmemmap_random(data, spb, pps, nblocks):
    bp = spb * pps
    nr = data.draw(st.lists(st.one_of(st.just(0), st.just(bp), st.integers(0, bp)),
                            min_size=nblocks, max_size=nblocks))
    words, nr = layout(nblocks, spb, pps, nr)
    total = nblocks * spb
    first = data.draw(st.integers(0, total - 1))
    nsec = data.draw(st.integers(0, total - first))
    assert_all_equal(all_vmemmap_answers(words, nr, first, nsec, spb, pps))


def test_section_summary_note():
    s = S.SectionSummary(6, 64)
    s.note(64 + 10, 150)
    assert s.counts.tolist() == [0, 54, 64, 32, 0, 0]
    s.note(64 + 10, -150)
    assert not s.counts.any()


def test_vmemmap_kernels_reject_short_arrays():
    w = np.zeros(2, dtype=np.uint64)
    out = np.empty(4, dtype=np.int64)
    for k in (_scan.vmemmap_per_page, _scan.vmemmap_wordwise, _scan.vmemmap_prefix):
        with pytest.raises(IndexError):
            k(w, 3, 64, out)
    with pytest.raises(ValueError):
        _scan.vmemmap_wordwise(w, 1, 100, out)
    with pytest.raises(IndexError):
        _scan.vmemmap_from_blocks(np.zeros(1, dtype=np.int64), 0, 3, 2, 64, out)
    with pytest.raises(ValueError):
        S.vmemmap_per_section("nope", nr_sections=1, pages_per_section=64)


MACHINES = [("x86_64", "y", None, "fast"), ("x86_64", "force", None, "fast"),
            ("x86_64", "y", "2G", "fast"), ("arm64", "y", None, "fast"),
            ("x86_64", "n", None, "fast"), ("x86_64", "y", None, "reference"),
            ("x86_64", "force", None, "reference")]


@pytest.mark.parametrize("arch,mode,block,backend", MACHINES)
def test_vmemmap_on_machine(arch, mode, block, backend):
    """After onlining some of the blocks of a hot-added range, every strategy on
    the live machine gives the same per-section counts; offline blocks count 0."""
    kw = dict(boot_memory="1G", memmap_on_memory=mode, backend=backend)
    if block:
        kw["block_size"] = block
    m = Machine(arch, **kw)
    nblk = 3 if backend == "fast" else 2
    blocks = m.add(size=nblk * m.block_size)
    for b in blocks[::2]:
        m.online(b, "online_movable")
    S.check_vmemmap_layout(m)
    pps = m.arch.pages_per_section
    start = m.block_range(blocks[0])[0]
    nsec = len(blocks) * m.sections_per_block
    summary = S.SectionSummary.from_machine(m)
    ans = {st_: S.vmemmap_per_section_machine(m, start, nsec, st_, summary).tolist()
           for st_ in S.VMEMMAP_STRATEGIES}
    words = m.pages.words(S.P_VMEMMAP, start, start + nsec * pps)
    ans["reference"] = S.ref_vmemmap_per_section(words, nsec, pps).tolist()
    assert_all_equal(ans)
    per_block = m.nr_vmemmap_pages(blocks[0])
    assert sum(ans["reference"][:m.sections_per_block]) == per_block
    assert (per_block > 0) == (mode != "n")
    if len(blocks) > 1:   # offline block: nothing marked
        assert sum(ans["reference"][m.sections_per_block:2 * m.sections_per_block]) == 0


# ---------------------------------------------------------------- isolation checks

def isolation_answers(r, v, u, b, s, e):
    out = {}
    for movable in (False, True):
        for skip in (False, True):
            key = (movable, skip)
            got = {st_: S.has_unmovable(st_, r, v, u, s, e, movable, skip)
                   for st_ in ("per_page", "wordwise")}
            got["reference"] = S.ref_has_unmovable(r, v, u, s, e, movable, skip)
            out[("hu",) + key] = got
    for skip in (False, True):
        got = {st_: S.first_not_free(st_, b, v, s, e, skip) for st_ in ("per_page", "wordwise")}
        got["reference"] = S.ref_first_not_free(b, v, s, e, skip)
        out[("fnf", skip)] = got
    return out


def assert_isolation_agree(r, v, u, b, s, e):
    for key, got in isolation_answers(r, v, u, b, s, e).items():
        assert len(set(got.values())) == 1, f"{key} [{s}, {e}): {got}"


EDGE_PFNS = [0, 1, 62, 63, 64, 65, 127, 128, 255, 256, 300, 319]


@pytest.mark.parametrize("pfn", EDGE_PFNS)
@pytest.mark.parametrize("plane", ["reserved", "unmovable", "vmemmap", "busy"])
def test_isolation_word_edges(pfn, plane):
    n = 320
    r = plane_from_pfns(n, [pfn] if plane == "reserved" else [])
    u = plane_from_pfns(n, [pfn] if plane == "unmovable" else [])
    # a vmemmap page is also reserved (mhp_init_memmap_on_memory) and not free
    v = plane_from_pfns(n, [pfn] if plane == "vmemmap" else [])
    if plane == "vmemmap":
        r = v.copy()
    b = ~plane_from_pfns(n, [pfn] if plane in ("busy", "vmemmap") else [])
    for s, e in [(0, n), (pfn, pfn + 1), (pfn, n), (0, pfn), (0, pfn + 1), (pfn + 1, n),
                 (max(pfn - 1, 0), min(pfn + 2, n)), (pfn, pfn)]:
        if 0 <= s <= e <= n:
            assert_isolation_agree(r, v, u, b, s, e)
    hit = S.has_unmovable("wordwise", r, v, u, 0, n, False, False)
    assert hit == (pfn if plane != "busy" else -1)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, 700), density=st.sampled_from([0.0, 0.002, 0.02, 0.3]))
def test_isolation_random(data, n, density):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    planes = [plane_from_pfns(n, np.flatnonzero(rng.random(n) < density)) for _ in range(3)]
    r, v, u = planes
    b = ~plane_from_pfns(n, np.flatnonzero(rng.random(n) < density))
    s = data.draw(st.integers(0, n))
    e = data.draw(st.integers(s, n))
    assert_isolation_agree(r, v, u, b, s, e)


def test_isolation_on_machine():
    """The copying strategies on a live machine agree with PageState's own scans,
    on a block with unmovable pages in ZONE_NORMAL."""
    m = Machine("x86_64", boot_memory="1G", memmap_on_memory="y")
    blocks = m.add(size="512M")
    for b in blocks:
        m.online(b, "online_kernel")
    m.alloc(5000, kind="unmovable", zone="Normal", placement="random", seed=3)
    s, e = m.block_range(blocks[0])
    e = m.block_range(blocks[-1])[1]
    for lo, hi in [(s, e), (s + 1, e - 1), (s + 511, s + 513), (s + 513, e)]:
        for movable in (False, True):
            for skip in (False, True):
                got = {st_: S.has_unmovable_machine(m.pages, lo, hi, movable, skip, st_)
                       for st_ in S.ISOLATION_STRATEGIES}
                assert len(set(got.values())) == 1, got
            got = {st_: S.first_not_free_machine(m.pages, lo, hi, movable, st_)
                   for st_ in S.ISOLATION_STRATEGIES}
            assert len(set(got.values())) == 1, got


# ---------------------------------------------------------------- freeing to the buddy

def fresh(cls, nr_pfns=1 << 16):
    p = cls(nr_pfns, 9, 10, 4)
    p.set_pageblocks(0, nr_pfns, 1, 2)   # MOVABLE, zone id 2
    return p


def state_of(p, n):
    blocks = p.free_blocks(0, n)
    return ([int(x) for x in blocks[0]], [int(x) for x in blocks[1]],
            p.nr_free.tolist(), p.words(S.P_BUDDY, 0, n).tolist())


@pytest.mark.parametrize("s,e", [(0, 1 << 14), (512, 1 << 14), (1, 2049), (4096 + 512, 40960),
                                 (1000, 1001), (5, 5), (3 << 10, 17 << 10)])
def test_free_range_strategies_agree(s, e):
    n = 1 << 16
    states = {}
    for strategy in S.FREE_STRATEGIES:
        for cls in (_core.PageState, RefPageState):
            p = fresh(cls, n)
            freed = S.free_range(p, s, e, strategy)
            assert freed == e - s
            states[(strategy, cls.__name__)] = state_of(p, n)
    # each strategy: the compiled core equals the reference
    for strategy in S.FREE_STRATEGIES:
        assert states[(strategy, "PageState")] == states[(strategy, "RefPageState")], strategy
    same = ["ctz", "page", "get_order_aligned"]
    if s % 1024 == 0:
        same.append("get_order")
    for strategy in same[1:]:
        assert states[(strategy, "PageState")] == states[("ctz", "PageState")], strategy


def test_get_order_misaligned_is_the_4_20_bug():
    p = fresh(_core.PageState)
    mis = []
    S.free_range(p, 512, 1 << 14, "get_order", mis)
    assert mis and mis[0] == (512, 10)


@settings(max_examples=25, deadline=None)
@given(s=st.integers(0, 6000), length=st.integers(0, 6000),
       strategy=st.sampled_from(["ctz", "page", "get_order_aligned"]))
def test_free_range_random(s, length, strategy):
    n = 1 << 14
    e = min(n, s + length)
    a, b = fresh(_core.PageState, n), fresh(RefPageState, n)
    S.free_range(a, s, e, strategy)
    S.ref_free_range(b, s, e, strategy)
    assert state_of(a, n) == state_of(b, n)
    c = fresh(_core.PageState, n)
    S.free_range(c, s, e, "ctz")
    assert state_of(a, n) == state_of(c, n)


# ---------------------------------------------------------------- exact answers

EXACT = [  # arch, mode, block size, expected vmemmap pages per section of blocks 0, 1, 2
    ("x86_64", "y", None, [512, 0, 512]),
    ("x86_64", "force", None, [512, 0, 512]),
    ("arm64", "y", None, [512, 0, 512]),
    ("x86_64", "n", None, [0, 0, 0]),
    ("x86_64", "y", "2G", [8192] + [0] * 15 + [0] * 16 + [8192] + [0] * 15),
    ("s390x", "y", None, [1024, 0, 1024]),
]


@pytest.mark.parametrize("arch,mode,block,expect", EXACT)
def test_vmemmap_strategies_give_the_kernels_counts(arch, mode, block, expect):
    """Blocks 0 and 2 of three hot-added blocks online: each block's first
    section holds its memmap (512 pages of 128 MiB on x86_64 and arm64, 1024
    of 256 MiB on s390x, 8192 of 2 GiB), the offline block none."""
    kw = dict(boot_memory="1G", memmap_on_memory=mode)
    if block:
        kw["block_size"] = block
    m = Machine(arch, **kw)
    blocks = m.add(size=3 * m.block_size)
    m.online(blocks[0], "online_movable")
    m.online(blocks[2], "online_movable")
    start = m.block_range(blocks[0])[0]
    nsec = 3 * m.sections_per_block
    for st_ in S.VMEMMAP_STRATEGIES:
        assert S.vmemmap_per_section_machine(m, start, nsec, st_).tolist() == expect, st_


def test_isolation_strategies_give_the_kernels_answers():
    """On a movable block with its memmap on it: no unmovable page; the memmap
    pages are the first pages test_pages_isolated() finds busy unless skipped;
    a pinned kernel page at +1000 is found by both checks."""
    m = Machine("x86_64", boot_memory="1G", memmap_on_memory="y")
    [b] = m.add(size="128M")
    m.online(b, "online_movable")
    s, e = m.block_range(b)
    for st_ in S.ISOLATION_STRATEGIES:
        assert S.has_unmovable_machine(m.pages, s, e, False, False, st_) == -1
        assert S.first_not_free_machine(m.pages, s, e, False, st_) == s
        assert S.first_not_free_machine(m.pages, s, e, True, st_) == -1
    m.pages.take_range(s + 1000, s + 1001)
    m.pages.set(S.P_UNMOVABLE, s + 1000, s + 1001)
    for st_ in S.ISOLATION_STRATEGIES:
        assert S.has_unmovable_machine(m.pages, s, e, False, False, st_) == s + 1000
        assert S.has_unmovable_machine(m.pages, s, e, True, False, st_) == -1
        assert S.first_not_free_machine(m.pages, s + 512, e, False, st_) == s + 1000
