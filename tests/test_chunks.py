"""Uniform chunks (the compiled core's run containers) against the bit-planes
and the pure-Python reference: every PageState method, on a state that is
uniform, written out, or neither, gives the same result and leaves the same
state; and the machine moves between the forms as memory is onlined,
allocated, freed and offlined."""
import numpy as np
import pytest

from conftest import snapshots_equal
from hotmem import _core
from hotmem.constants import P_BUDDY, P_HEAD, P_OFFLINE, P_RESERVED, P_UNMOVABLE, PLANES
from hotmem.machine import Machine
from hotmem.reference import RefPageState

CH = 15                 # chunk order: 32768 pfns, one x86_64 section
NR = 4 << CH            # four chunks
PBO, MAXO, ZIDS = 9, 10, 2
CTZ = _core.FREE_STRATEGIES["ctz"]
ALL = list(PLANES.values())


def prepared(kind):
    """Chunks 0-2 onlined as blocks of one chunk with 512 memmap pages (zone
    0) and chunk 3 as one without memmap (zone 1): uniform on the fast core
    ("uniform"), written out to the planes ("bits"), or the reference."""
    if kind == "reference":
        p = RefPageState(NR, PBO, MAXO, ZIDS)
    else:
        p = _core.PageState(NR, PBO, MAXO, ZIDS, CH)
    assert p.online_blocks(0, 3, 1 << CH, 512, 0, CTZ) == 3 * ((1 << CH) - 512)
    assert p.online_blocks(3 << CH, 1, 1 << CH, 0, 1, CTZ) == 1 << CH
    if kind != "reference":
        assert p.chunk_kinds(0, NR).tolist() == [2 + 512] * 3 + [2]
        if kind == "bits":
            p.expand(0, NR)
            assert p.chunk_kinds(0, NR).tolist() == [1] * 4
    return p


def state(p):
    mt, zn = p.pageblock_bytes(0, NR)
    return ([p.words(x, 0, NR).tolist() for x in ALL], p.nr_free.tolist(),
            mt.tolist(), zn.tolist())


def same(x, y):
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return np.array_equal(np.asarray(x), np.asarray(y))
    if isinstance(x, tuple):
        return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y, strict=True))
    return x == y


C = 1 << CH


def _fold(p):
    """Fold what is uniform again (the fast core only: the reference has one form)."""
    if isinstance(p, _core.PageState):
        p.fold(0, NR)


CALLS = {
    "count": [(lambda p, x=x, s=s, e=e: p.count(x, s, e))
              for x in ALL for s, e in ((0, NR), (100, 700), (513, C + 1537), (C - 3, C + 5))],
    "test": [(lambda p, x=x, f=f: p.test(x, f))
             for x in ALL for f in (0, 511, 512, 1023, 1024, 1536, 2048, C + 512, 3 * C)],
    "find_set": [(lambda p, x=x, s=s, e=e: p.find_set(x, s, e))
                 for x in ALL for s, e in ((0, NR), (513, 2000), (1025, C), (C + 600, NR))],
    "find_clear": [(lambda p, x=x, s=s, e=e: p.find_clear(x, s, e))
                   for x in ALL for s, e in ((0, NR), (512, 2000), (1024, 1025), (3 * C, NR))],
    "words": [(lambda p, x=x: p.words(x, 64, NR - 64)) for x in ALL],
    "release": [lambda p: p.release(C, 2 * C), lambda p: p.release(512, 3 * 512),
                lambda p: p.release(C - 1024, 2 * C + 2048),
                lambda p: p.release(100, 900, [P_BUDDY, P_HEAD])],
    "pageblocks": [lambda p: p.set_pageblocks(C, C + 1024, 0, 1),
                   lambda p: p.pageblock(C + 700), lambda p: p.find_zone_pageblock(1, 0, NR, True),
                   lambda p: p.first_not_isolated(0, NR)],
    "migratetype": [lambda p: p.set_migratetype(1024, 2560, 0),
                    lambda p: p.set_migratetype(3 * C, NR, 2)],
    "isolate": [lambda p: (p.isolate(1536, C + 512), p.first_not_isolated(1536, NR),
                           p.unisolate(1536, C + 512))],
    "head_order_of": [(lambda p, f=f: p.head_order_of(f))
                      for f in (0, 511, 512, 513, 1024, 1536, 2048, C + 4096, 3 * C, 3 * C + 1024)],
    "take_free": [lambda p: (p.take_range(700, 5000), p.free_range(700, 5000, CTZ)),
                  lambda p: p.take_pages(np.array([600, 601, C + 4096, 3 * C], np.int64)),
                  lambda p: (p.take_pages(np.array([600, 601, 2 * C + 999], np.int64)),
                             p.set(P_UNMOVABLE, 600, 602),
                             p.free_pages(np.array([600, 601, 2 * C + 999], np.int64)))],
    "remove_free_range": [lambda p: p.remove_free_range(3000, 9000),
                          lambda p: p.remove_free_range(0, NR)],
    "offline_blocks": [lambda p: p.offline_blocks(0, 2, C, 512),
                       lambda p: p.offline_blocks(3 * C, 1, C, 0),
                       lambda p: (p.offline_blocks(C, 1, C, 512),
                                  p.online_blocks(C, 1, C, 1024, 1, CTZ))],
    "fold": [lambda p: (p.take_range(3 * C, NR), _fold(p), p.count(P_BUDDY, 0, NR))[::2],
             lambda p: (p.take_range(C + 512, C + 600), p.free_pages(np.arange(C + 512, C + 600)),
                        p.free_blocks(C, 2 * C)),
             lambda p: (p.take_range(700, 800), _fold(p), p.free_blocks(0, C))[::2]],
    "scans": [lambda p: p.has_unmovable(0, NR, False, False),
              lambda p: p.has_unmovable(0, NR, False, True),
              lambda p: (p.set(P_RESERVED, C + 7, C + 9), p.has_unmovable(C, NR, True, False)),
              lambda p: p.first_not_free(0, NR, False),
              lambda p: p.first_not_free(0, NR, True),
              lambda p: [p.first_not_free(C + 100, NR, False), p.first_not_free(C + 600, NR, False),
                         p.first_not_free(C + 600, 2 * C + 3, False),
                         p.first_not_free(C + 5, C + 9, True)],
              lambda p: (p.set(P_RESERVED, 2 * C + 7, 2 * C + 9),
                         [p.has_unmovable(C + 3, NR, False, True),
                          p.has_unmovable(2 * C + 8, NR, False, False),
                          p.has_unmovable(C + 3, 2 * C + 7, False, False)]),
              lambda p: (p.set(P_OFFLINE, 3 * C, 3 * C + 64),
                         p.first_not_free(3 * C, NR, True, True)),
              lambda p: p.allocated_pfns(0, NR, False),
              lambda p: (p.take_range(C + 512, C + 520), p.allocated_pfns(0, NR, False)),
              lambda p: p.allocated_pfns(0, NR, True),
              lambda p: p.first_free(0, NR, 1000),
              lambda p: p.first_free(C - 10, NR, 5000),
              lambda p: p.free_by_rank(100, NR, np.array([0, 5, 700, 40000, 97000], np.int64)),
              lambda p: p.free_blocks(0, NR), lambda p: p.free_blocks(700, C + 3000),
              # starting inside and between the max-order blocks of a uniform chunk
              lambda p: (p.free_blocks(C + 5000, 3 * C + 100), p.free_blocks(C + 1024, C + 2049)),
              lambda p: [p.first_free_block(C + 3000, NR, o) for o in (9, 10)]
              + [p.head_order_of(f) for f in (C + 3072, C + 3073, 3 * C + 5 * 1024)],
              lambda p: [p.first_free_block(0, NR, o) for o in range(11)],
              lambda p: (p.take_range(C + 1024, C + 1025),
                          [p.first_free_block(C, NR, o) for o in range(11)])[1]],
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_method_same_on_both_forms(name):
    for i, call in enumerate(CALLS[name]):
        results, states = [], []
        for kind in ("reference", "uniform", "bits"):
            p = prepared(kind)
            results.append(call(p))
            states.append(state(p))
        ref = results[0]
        assert same(results[1], ref) and same(results[2], ref), (name, i, results)
        assert states[1] == states[0] and states[2] == states[0], (name, i)


def test_isolation_scans_read_uniform_chunks_in_place():
    """has_unmovable_pages() and test_pages_isolated() answer from a uniform
    chunk's descriptor: the chunk stays uniform (nothing is written out)."""
    p = prepared("uniform")
    assert p.has_unmovable(0, NR, False, True) == -1
    assert p.first_not_free(0, 3 * C, True) == -1
    assert p.first_not_free(C + 100, NR, False) == C + 100
    assert p.first_not_free(C + 512, 3 * C, False) == 2 * C
    assert [p.head_order_of(f) for f in (511, 512, 1024, 2048, 3 * C)] == [-1, 9, 10, 10, 10]
    assert p.chunk_kinds(0, NR).tolist() == [2 + 512] * 3 + [2]


def test_fold_to_descriptors():
    """Planes that hold a uniform state again become a descriptor; planes all
    zero (every page allocated movable) become CH_ZERO; anything else stays."""
    p = prepared("bits")
    p.take_range(3 * C, NR)           # chunk 3: every page allocated
    p.take_range(C + 4096, C + 4100)  # chunk 1: four pages allocated
    assert p.fold(0, NR) == 3
    assert p.chunk_kinds(0, NR).tolist() == [2 + 512, 1, 2 + 512, 0]
    p.free_pages(np.arange(C + 4096, C + 4100))
    assert p.chunk_kinds(0, NR).tolist() == [2 + 512] * 3 + [0]
    assert state(p) == state(_freed_reference())


def _freed_reference():
    r = prepared("reference")
    r.take_range(3 * C, NR)
    r.take_range(C + 4096, C + 4100)
    r.free_pages(np.arange(C + 4096, C + 4100))
    return r


def test_uniform_counts_match_the_buddy():
    """The free blocks a descriptor stands for are those freeing page by page leaves."""
    u, r = prepared("uniform"), prepared("reference")
    assert u.nr_free.tolist() == r.nr_free.tolist()
    # 512 memmap pages, then one order-9 block and 31 of order 10, per chunk
    assert u.nr_free[0, 1, 9] == 3 and u.nr_free[0, 1, 10] == 3 * 31
    assert u.nr_free[1, 1, 10] == 32
    assert u.nr_chunks_with_bits() == 0


def lifecycle_machine(backend):
    return Machine("x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y",
                   max_memory="16G", backend=backend)


def test_machine_moves_between_forms():
    """Online: uniform; an allocation writes its chunk out; offline folds it
    back to zero; the reference agrees at every step."""
    f, r = lifecycle_machine("fast"), lifecycle_machine("reference")
    boot_bits = f.pages.nr_chunks_with_bits()
    for m in (f, r):
        blocks = m.add(0x100000000, "1G")
        for b in blocks[:4]:
            m.online(b, "online_movable")
        m.online_blocks(blocks[4:], "online_movable")
    kinds = f.pages.chunk_kinds(0x100000, 0x100000 + (8 << 15))
    assert kinds.tolist() == [2 + 512] * 8
    assert f.pages.nr_chunks_with_bits() == boot_bits
    assert snapshots_equal(f.snapshot(), r.snapshot()) == []
    for m in (f, r):
        m.alloc(5000, kind="movable", zone="Movable", placement="lowest")
    kinds = f.pages.chunk_kinds(0x100000, 0x100000 + (8 << 15))
    assert kinds.tolist() == [1] + [2 + 512] * 7
    assert snapshots_equal(f.snapshot(), r.snapshot()) == []
    for m in (f, r):
        m.free(kind="movable")
    # every page free again: the chunk folds back to its descriptor
    assert f.pages.chunk_kinds(0x100000, 0x100000 + (8 << 15)).tolist() == [2 + 512] * 8
    assert snapshots_equal(f.snapshot(), r.snapshot()) == []
    for m in (f, r):
        m.offline_blocks(range(32, 40))
    assert f.pages.chunk_kinds(0x100000, 0x100000 + (8 << 15)).tolist() == [0] * 8
    assert f.pages.nr_chunks_with_bits() == boot_bits
    assert f.pages.nr_uniform == 0
    assert snapshots_equal(f.snapshot(), r.snapshot()) == []


def test_address_space_to_max_physmem_bits():
    """x86_64 with 5-level paging: max_memory up to 4 PiB; memory added at the
    top goes through its lifecycle like any other, at the cost of its chunks."""
    from hotmem.errors import ConfigError
    with pytest.raises(ConfigError, match="at most 0x10000000000000"):
        Machine("x86_64", boot_memory="4G", max_memory="8P")
    m = Machine("x86_64", boot_memory="64G", memmap_on_memory="y", max_memory="4P",
                hypervisor=False)
    assert m.block_size == 2 << 30 and m.nr_pfns == 1 << 40
    top = (4 << 50) - (64 << 30)
    blocks = m.add(top, "64G")
    assert blocks[0] == top // m.block_size and len(blocks) == 32
    m.online_blocks(blocks[:16], "online_movable")
    for b in blocks[16:]:
        m.online(b, "online_movable")
    movable = m.zone(0, 3)
    assert movable.zone_start_pfn == top >> 12 and movable.spanned_pages == 64 << 18
    # 2 GiB blocks: 8192 memmap pages in the first of their 16 sections
    assert movable.present_pages == 64 << 18
    assert movable.managed_pages == (64 << 18) - 32 * 8192
    assert m.pages.nr_uniform == 32 * 16
    m.alloc(1000, zone="Movable", placement="lowest")
    assert m.pages.nr_uniform == 32 * 16 - 1
    m.free(kind="movable")
    m.offline_blocks(blocks)
    m.remove(top, "64G")
    assert m.pages.nr_uniform == 0 and movable.present_pages == 0
