"""The compiled one-block path (_blockops.BlockOps, every write of an online
type or ``offline`` to memoryN/state where it applies) against the general
path (the same backend with ``fast_paths`` off: the design's hooks) and the
reference backend: same results, same errors, same state after every write,
and the compiled path taken where the tests say it is (its counters)."""
import numpy as np
import pytest

import conftest
from conftest import snapshots_equal
from hotmem.constants import MEM_ONLINE
from hotmem.errors import ConfigError, HotplugError
from hotmem.invariants import check
from hotmem.machine import Machine

DIMM = 0x100000000
N = 8   # blocks of 128 MiB (256 MiB on s390x) added at DIMM


def trio(**kw):
    """(fast, general, reference) machines with ``kw`` (conftest.trio)."""
    return conftest.trio(**{"kernel": "6.12", "boot_memory": "256M", **kw})


def outcome(m, fn):
    try:
        out = fn(m)
    except HotplugError as err:
        return (err.errno, err.message)
    except ConfigError as err:
        return ("ConfigError", str(err))
    if isinstance(out, np.ndarray):
        return ("array", out.tolist())
    return ("zone", out.zid) if hasattr(out, "zid") else ("ok", out)


def same(ms, fn):
    """fn on every machine: the same outcome and the same state after it."""
    outs = [outcome(m, fn) for m in ms]
    assert outs.count(outs[0]) == len(outs), outs
    snap = ms[0].snapshot()
    for m in ms[1:]:
        assert snapshots_equal(snap, m.snapshot()) == []
        assert [z.span_state() for z in m.zones] == [z.span_state() for z in ms[0].zones]
        assert m.min_free_kbytes == ms[0].min_free_kbytes
    check(ms[0])
    return outs[0]


def taken(m):
    return m.block_ops.nr_onlined, m.block_ops.nr_offlined


# (online order, offline order) of each round: spans grow at either end and
# in the middle, and shrink from either end (forward and reverse searches)
# and from the middle
ROUNDS = [
    (list(range(N)), list(range(N - 1, -1, -1))),
    (list(range(N - 1, -1, -1)), list(range(N))),
    ([0, 2, 4, 6, 1, 3, 5, 7], [3, 4, 2, 5, 1, 6, 0, 7]),
]

# (machine, whether the compiled path takes the offlines)
CONFIGS = {
    "x86_64 6.12": (dict(memmap_on_memory="y"), True),
    "x86_64 6.1": (dict(kernel="6.1", memmap_on_memory="y"), True),  # Movable is lowmem
    "x86_64 6.12 memmap from buddy": (dict(memmap_on_memory="n"), True),
    "x86_64 2 nodes": (dict(memmap_on_memory="y", nr_nodes=2), True),
    "s390x 6.8": (dict(arch="s390x", kernel="6.8", memmap_on_memory="y"), True),
    "ppc64 radix 64k 6.12": (dict(arch="ppc64-radix-64k", memmap_on_memory="y"), True),
    # the MEM_GOING_OFFLINE notifier refuses every offline (EPERM): general path
    "arm64 7.3": (dict(arch="arm64-4k", kernel="7.3", memmap_on_memory="y"), False),
    "arm64 7.3 memmap from buddy": (dict(arch="arm64-4k", kernel="7.3",
                                         memmap_on_memory="n"), True),
}


# a plain "online" picks the zone (contig-zones) on x86_64; elsewhere it is
# the kernel zone's online, and the reference is slow on s390x's big blocks
CASES = [(c, k) for c in CONFIGS for k in ("online_movable", "online_kernel", "online")
         if k != "online" or c.startswith("x86_64")]


@pytest.mark.parametrize("config,kind", CASES)
def test_one_block_at_a_time(config, kind):
    """Online N blocks one write each, then offline them, in the orders of
    ROUNDS."""
    kw, offlines_taken = CONFIGS[config]
    ms = trio(**kw)
    nid = 1 if kw.get("nr_nodes") else 0
    blocks = same(ms, lambda m: m.add(DIMM, N * m.block_size, nid=nid))[1]
    for ups, downs in ROUNDS:
        for i in ups:
            same(ms, lambda m, i=i: m.online(blocks[i], kind))
        for i in downs:
            same(ms, lambda m, i=i: m.offline(blocks[i]))
        if not offlines_taken:
            break   # the blocks stay online
    rounds = len(ROUNDS) if offlines_taken else 1
    assert taken(ms[0]) == (rounds * N, rounds * N if offlines_taken else 0)
    assert taken(ms[1]) == (0, 0)
    if offlines_taken:
        same(ms, lambda m: m.remove(DIMM, N * m.block_size))


def test_uniform_and_bitplane_forms():
    """The compiled offline counts free pages in either form of a block (a
    uniform descriptor or bit-planes written out by allocations, frees or
    expand), and the compiled online of released chunks writes descriptors."""
    ms = fast, _, _ = trio(memmap_on_memory="y")
    blocks = same(ms, lambda m: m.add(DIMM, N * m.block_size))[1]
    for b in blocks:
        same(ms, lambda m, b=b: m.online(b, "online_movable"))
    assert taken(fast) == (N, 0)
    kinds = fast.pages.chunk_kinds(*fast.block_range(blocks[0]))
    assert kinds.tolist() == [2 + fast.nr_vmemmap_pages(blocks[0])]      # uniform

    # bit-planes: movable pages allocated lowest-first in blocks[0]; freed,
    # the block folds back to its descriptor
    same(ms, lambda m: m.alloc(5000, kind="movable", zone="Movable", placement="lowest"))
    s, e = fast.block_range(blocks[0])
    assert fast.pages.chunk_kinds(s, e).tolist() == [1]
    same(ms, lambda m: m.free(None, kind="movable"))
    assert fast.pages.chunk_kinds(s, e).tolist() == [2 + fast.nr_vmemmap_pages(blocks[0])]
    same(ms, lambda m: m.offline(blocks[0]))
    assert taken(fast) == (N, 1)

    # written out without a change, then folded back
    s, e = fast.block_range(blocks[1])
    fast.pages.expand(s, e)
    assert fast.pages.chunk_kinds(s, e).tolist() == [1]
    same(ms, lambda m: m.offline(blocks[1]))
    s, e = fast.block_range(blocks[2])
    fast.pages.expand(s, e)
    assert fast.pages.fold(s, e) == 1
    same(ms, lambda m: m.offline(blocks[2]))
    assert taken(fast) == (N, 3)

    # an unmovable page in a kernel block: the compiled path declines and the
    # general one says EBUSY, neither changing anything; freed, it is taken
    same(ms, lambda m: m.offline(blocks[5]))
    same(ms, lambda m: m.online(blocks[5], "online_kernel"))
    assert taken(fast) == (N + 1, 4)
    assert same(ms, lambda m: m.alloc(1, kind="unmovable", zone="Normal",
                                      placement="lowest"))[0] == "array"
    assert fast.blk_state[blocks[5]] and fast.pages.chunk_kinds(
        *fast.block_range(blocks[5])).tolist() == [1]
    before = fast.snapshot()
    assert fast.block_ops.offline(fast, blocks[5]) is False
    assert snapshots_equal(before, fast.snapshot()) == []
    assert same(ms, lambda m: m.offline(blocks[5]))[0] == "EBUSY"
    same(ms, lambda m: m.free(None, kind="unmovable"))
    same(ms, lambda m: m.offline(blocks[5]))
    assert taken(fast) == (N + 1, 5)

    # movable pages in blocks[3] (the lowest online in Movable): the general
    # path migrates them
    assert same(ms, lambda m: m.alloc(100, kind="movable", zone="Movable",
                                      placement="lowest"))[0] == "array"
    assert same(ms, lambda m: m.offline(blocks[3])) == ("ok", None)
    assert taken(fast) == (N + 1, 5)

    # back online: released chunks become descriptors again
    for b in blocks[:4] + blocks[5:6]:
        same(ms, lambda m, b=b: m.online(b, "online_movable"))
    assert taken(fast) == (N + 6, 5)
    assert fast.pages.chunk_kinds(*fast.block_range(blocks[1])).tolist() == \
        [2 + fast.nr_vmemmap_pages(blocks[1])]


def test_declines_change_nothing():
    """Every write the compiled path does not take returns None / False from
    it with the machine unchanged, and the public call then errs (or
    succeeds) exactly as the general path and the reference do."""
    ms = fast, _, _ = trio(memmap_on_memory="y")
    blocks = same(ms, lambda m: m.add(DIMM, 4 * m.block_size))[1]
    same(ms, lambda m: m.online(blocks[0], "online_movable"))
    ops = fast.block_ops
    boot = 0
    online_cases = [
        (blocks[0], "online_movable"),          # already online
        (blocks[1], "offline"), (blocks[1], "bogus"), (blocks[1], None), (blocks[1], b"online"),
        (boot, "online_movable"),               # boot memory
        (fast.nr_blocks - 1, "online"),         # absent
        (fast.nr_blocks, "online"), (-1, "online"), (1 << 70, "online"),
        (np.int64(blocks[1]), "online_movable"), (True, "online"), ("33", "online"),
    ]
    outs = []
    for blk, kind in online_cases:
        before = fast.snapshot()
        assert ops.online(fast, blk, kind) is None, (blk, kind)
        assert snapshots_equal(before, fast.snapshot()) == []
        outs.append(same(ms, lambda m, blk=blk, kind=kind: m.online(blk, kind))[0])
    offline_cases = [blocks[2], blocks[3] + 1, boot, fast.nr_blocks, -1, np.int64(blocks[1]),
                     False, 2.0]
    for blk in offline_cases:
        before = fast.snapshot()
        assert ops.offline(fast, blk) is False, blk
        assert snapshots_equal(before, fast.snapshot()) == []
        outs.append(same(ms, lambda m, blk=blk: m.offline(blk))[0])
    # the np.int64 writes succeed through the general path, the rest fail
    assert outs == ["EINVAL"] * 10 + ["zone", "ConfigError", "ConfigError"] + \
        ["EINVAL"] * 5 + ["ok", "ConfigError", "ConfigError"], outs
    assert taken(fast) == (1, 0)


def test_declined_by_policy_and_design():
    """auto-movable decides a plain "online" by the ratio; a design that is
    not batchable, fast_paths off and a driver's blocks (its online-page
    callback and notifiers) always take the general path."""
    ms = fast, _, _ = trio(memmap_on_memory="y", online_policy="auto-movable")
    blocks = same(ms, lambda m: m.add(DIMM, 2 * m.block_size))[1]
    same(ms, lambda m: m.online(blocks[0], "online"))
    same(ms, lambda m: m.online(blocks[1], "online_kernel"))
    assert taken(fast) == (1, 0)

    ms = fast, _, _ = trio(memmap_on_memory="y", design="design_plugin:RefusesEverything")
    blocks = same(ms, lambda m: m.add(DIMM, 2 * m.block_size))[1]
    same(ms, lambda m: m.online(blocks[0], "online_movable"))
    same(ms, lambda m: m.offline(blocks[0]))
    assert taken(fast) == (0, 0)

    ms = fast, _, _ = trio(memmap_on_memory="y", design="design_plugin:PatchedMainline")
    blocks = same(ms, lambda m: m.add(DIMM, 2 * m.block_size))[1]
    same(ms, lambda m: m.online(blocks[0], "online_movable"))
    fast.fast_paths = False
    same(ms, lambda m: m.offline(blocks[0]))
    assert taken(fast) == (1, 0)

    ms = fast, _, _ = trio(boot_memory="4G", max_memory="16G")
    vm0 = {"name": "vm0", "driver": "virtio-mem", "start": "0x140000000", "size": "2G",
           "block_size": "2M", "requested_size": "512M"}
    blocks = same(ms, lambda m: m.attach(vm0))[1]
    same(ms, lambda m: m.online(blocks[0], "online_movable"))
    same(ms, lambda m: m.offline(blocks[0]))
    same(ms, lambda m: m.online(blocks[0], "online_movable"))
    assert taken(fast) == (0, 0)


def test_watermark_inputs_that_change():
    """Onlines into ZONE_NORMAL change min_free_kbytes' inputs on every call
    (page_alloc computes it), a user min_free_kbytes and THP off change the
    memo key: the compiled path follows each."""
    ms = fast, _, _ = trio(memmap_on_memory="y")
    blocks = same(ms, lambda m: m.add(DIMM, N * m.block_size))[1]
    for b in blocks[:3]:
        same(ms, lambda m, b=b: m.online(b, "online_kernel"))
    for m in ms:
        m.user_min_free_kbytes = m.min_free_kbytes = 20000
    same(ms, lambda m: m.online(blocks[3], "online_movable"))
    same(ms, lambda m: m.online(blocks[4], "online_movable"))
    for m in ms:
        m.user_min_free_kbytes = None
        m.thp = False
    same(ms, lambda m: m.online(blocks[5], "online_movable"))
    same(ms, lambda m: m.offline(blocks[0]))
    same(ms, lambda m: m.offline(blocks[4]))
    assert taken(fast) == (6, 2)


def test_min_free_kbytes_up_to_its_clamp():
    """Onlining 4.5 TiB into ZONE_NORMAL one block per call takes
    min_free_kbytes from khugepaged's recommendation (11 pageblocks per
    populated zone up to Normal: 67584 kB) through int_sqrt(lowmem_kbytes *
    16) to its 262144 clamp (lowmem past 4 TiB); every step's zones and
    min_free_kbytes against the general path (the reference would take hours
    here), up and down in both orders."""
    kw = dict(arch="x86_64", kernel="6.12", boot_memory="4G", memmap_on_memory="y")
    fast = Machine(**kw)
    general = Machine(**kw)
    general.fast_paths = False
    blocks = fast.add(size="4608G")
    assert general.add(size="4608G") == blocks
    seen = set()

    def same_zones():
        assert fast.min_free_kbytes == general.min_free_kbytes
        assert [z.span_state() for z in fast.zones] == [z.span_state() for z in general.zones]
        seen.add(fast.min_free_kbytes)

    for ups, downs in ((blocks, blocks[::-1]), (blocks[::-1], blocks)):
        for b in ups:
            assert fast.online(b, "online_kernel").zid == general.online(b, "online_kernel").zid
            same_zones()
        for b in downs:
            fast.offline(b)
            general.offline(b)
            same_zones()
    assert min(seen) == 67584 and max(seen) == 262144 and len(seen) > 1000
    assert taken(fast) == (2 * len(blocks), 2 * len(blocks))


@pytest.mark.parametrize("kernel,kind,computed", [
    # Movable is not lowmem: the first write, and the next, which sees the
    # high watermarks the first one left in the kernel zones
    ("6.12", "online_movable", 2),
    ("6.12", "online_kernel", 2 * N),
    ("6.1", "online_movable", 2 * N),     # Movable is lowmem before 6.12
])
def test_watermark_memo_hits(kernel, kind, computed):
    """min_free_kbytes is computed only when its inputs change: twice for a
    ZONE_MOVABLE lifecycle from 6.12, on every write otherwise."""
    ms = fast, _, _ = trio(kernel=kernel, memmap_on_memory="y")
    blocks = same(ms, lambda m: m.add(DIMM, N * m.block_size))[1]
    for b in blocks:
        same(ms, lambda m, b=b: m.online(b, kind))
    for b in blocks:
        same(ms, lambda m, b=b: m.offline(b))
    assert taken(fast) == (N, N)
    assert fast.block_ops.nr_min_free_kbytes == computed


def test_online_after_a_balloon_brings_the_reserves_up_to_date():
    """Before 6.14 a balloon leaves lowmem_reserve on the managed pages of the
    last online; the next online (one auto-onlined block, through the compiled path)
    recomputes it (init_per_zone_wmark_min -> setup_per_zone_lowmem_reserve)
    exactly as the general path and the reference do."""
    from hotmem.views.meminfo import meminfo
    from hotmem.views.procfs import zoneinfo
    ms = trio(boot_memory="4G", max_memory="16G", auto_online_blocks="online")
    for m in ms:
        m.attach({"name": "hv", "driver": "hv-balloon", "size": "256M", "backed": "256M"})
        m.resize("hv", "128M")
        assert m.managed_unreserved
    before = [zoneinfo(m) for m in ms]
    assert before.count(before[0]) == 3
    taken0 = taken(ms[0])
    blocks = same(ms, lambda m: m.add(size="128M"))[1]      # auto-onlined
    assert taken(ms[0]) == (taken0[0] + 1, taken0[1])
    assert all(m.blk_state[blocks[0]] == MEM_ONLINE for m in ms)
    assert not any(m.managed_unreserved for m in ms)
    after = [(zoneinfo(m), meminfo(m)) for m in ms]
    assert after.count(after[0]) == 3 and after[0][0] != before[0]
