"""Onlining and offlining many blocks at once ends exactly where one-by-one does."""
import pytest

from conftest import snapshots_equal
from hotmem.invariants import check
from hotmem.machine import Machine

DIMM = 0x100000000


def run(kernel, seq, batch, backend="fast", boot="2G", prepare=None, fast_paths=True):
    m = Machine(arch="x86_64", kernel=kernel, boot_memory=boot, memmap_on_memory="y",
                backend=backend, max_memory="16G")
    # False: every one-block online / offline goes through the design's steps
    m.fast_paths = fast_paths and m.fast_paths
    m.add(DIMM, "2G")
    if prepare:
        prepare(m)
    outcomes = []
    for op, blocks, arg in seq:
        if batch:
            if op == "online":
                res = m.online_blocks(blocks, arg, stop_on_error=False)
            else:
                res = m.offline_blocks(blocks, stop_on_error=False)
            outcomes += [(b, e.errno if e else "ok") for b, e in res]
        else:
            for b in blocks:
                try:
                    m.online(b, arg) if op == "online" else m.offline(b)
                    outcomes.append((b, "ok"))
                except Exception as e:  # HotplugError
                    outcomes.append((b, e.errno))
        check(m)
    return m, outcomes


SEQUENCES = {
    "movable up and down": [("online", list(range(32, 48)), "online_movable"),
                            ("offline", list(range(32, 48)), None)],
    "kernel zone": [("online", list(range(32, 48)), "online_kernel"),
                    ("offline", list(range(40, 48)) + list(range(32, 40)), None)],
    "default zone": [("online", list(range(36, 44)), "online"),
                     ("online", list(range(32, 36)), "online_movable"),
                     ("online", list(range(44, 48)), "online"),
                     ("offline", list(range(34, 46)), None)],
    "holes and repeats": [("online", [32, 33, 35, 36, 37, 33, 40, 41], "online_movable"),
                          ("offline", [36, 35, 40, 41, 41, 32], None),
                          ("online", list(range(32, 48)), "online_movable")],
}


@pytest.mark.parametrize("kernel", ["6.12", "6.1"])
@pytest.mark.parametrize("name", list(SEQUENCES))
def test_batch_equals_one_by_one(kernel, name):
    a, ra = run(kernel, SEQUENCES[name], batch=False, fast_paths=False)
    for b, rb in (run(kernel, SEQUENCES[name], batch=True),
                  run(kernel, SEQUENCES[name], batch=False)):
        assert ra == rb
        assert snapshots_equal(a.snapshot(), b.snapshot()) == []
        for za, zb in zip(a.zones, b.zones, strict=True):
            assert za.span_state() == zb.span_state()
        assert a.min_free_kbytes == b.min_free_kbytes


def test_batch_with_allocations_falls_back_per_block():
    def prepare(m):
        m.online_blocks(range(32, 40), "online")
        m.alloc(100, kind="unmovable", zone="Normal", placement="lowest")
        m.alloc(5000, kind="movable", zone="Normal", seed=2)
    seq = [("offline", list(range(32, 40)), None)]
    a, ra = run("6.12", seq, batch=False, prepare=prepare)
    b, rb = run("6.12", seq, batch=True, prepare=prepare)
    assert ra == rb and ra[0] == (32, "EBUSY")
    assert snapshots_equal(a.snapshot(), b.snapshot()) == []


def test_batch_on_reference_backend():
    seq = SEQUENCES["default zone"]
    a, ra = run("6.12", seq, batch=True, backend="fast", boot="256M")
    b, rb = run("6.12", seq, batch=True, backend="reference", boot="256M")
    assert ra == rb
    assert snapshots_equal(a.snapshot(), b.snapshot()) == []


class _NoMemo(dict):
    """A watermark memo that remembers nothing: every init_per_zone_wmark_min()
    computes min_free_kbytes from scratch, as the kernel does."""

    def __setitem__(self, key, value):
        pass


@pytest.mark.parametrize("kernel", ["6.12", "6.1"])
@pytest.mark.parametrize("name", list(SEQUENCES))
def test_memoised_watermarks_equal_computed(kernel, name):
    def prepare(m):
        m.wmark_memo = _NoMemo()
    a, ra = run(kernel, SEQUENCES[name], batch=False, fast_paths=False, prepare=prepare)
    b, rb = run(kernel, SEQUENCES[name], batch=False)
    assert ra == rb and a.min_free_kbytes == b.min_free_kbytes
    assert [z.span_state() for z in a.zones] == [z.span_state() for z in b.zones]
    assert len(b.wmark_memo) > 0


def test_compiled_watermark_arithmetic():
    """_core.setup_per_zone_wmarks against __setup_per_zone_wmarks() written
    out in Python, on zones up to petabytes (products beyond 64 bits)."""
    import random

    from hotmem import _core
    from hotmem.mmzone import Zone
    rng = random.Random(5)
    for like in (True, False):
        for _ in range(200):
            zones = [Zone(0, zt, True) for zt in range(5)]
            for z in zones:
                z.managed_pages = rng.choice([0, rng.randrange(1 << 20), rng.randrange(1 << 42)])
            pages_min = rng.choice([32, rng.randrange(1 << 16), rng.randrange(1 << 38)])
            _core.setup_per_zone_wmarks(zones, pages_min, like, 3, 4, 32, 10)
            lowmem = sum(z.managed_pages for z in zones
                         if z.ztype != 4 and (z.ztype != 3 or not like))
            for z in zones:
                tmp = pages_min * z.managed_pages // lowmem if lowmem else 0
                wmin = min(max(z.managed_pages // 1024, 32), 128) if z.ztype == 3 and like \
                    else tmp
                tmp = max(tmp >> 2, z.managed_pages * 10 // 10000)
                assert (z.wmark_min, z.wmark_low, z.wmark_high, z.wmark_promo) == \
                    (wmin, wmin + tmp, wmin + 2 * tmp, wmin + 3 * tmp)


def test_block_results_hold_runs_and_read_as_a_list():
    """online_blocks returns a run per one-pass batch, read as (block, error)
    per block: index, slice, iteration and comparison as the list it stands for."""
    m = Machine(arch="x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y",
                max_memory="16G")
    m.add(DIMM, "1G")
    m.online(35, "online")
    res = m.online_blocks(range(32, 40), "online_movable", stop_on_error=False)
    assert len(res._firsts) == 3          # 32-34 in one pass, 35 alone (EINVAL), 36-39
    want = [(b, None) for b in range(32, 35)] + [(35, res[3][1])] + \
        [(b, None) for b in range(36, 40)]
    assert res[3][1] is not None and res[3][1].errno == "EINVAL"
    assert res == want and list(res) == want and len(res) == 8
    assert res[-1] == (39, None) and res[2:5] == want[2:5] and res[::3] == want[::3]
    with pytest.raises(IndexError):
        res[8]
    assert res != want[:-1]
