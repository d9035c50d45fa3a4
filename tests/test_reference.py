"""The compiled core against the pure-Python reference model, op by op.

A hypothesis state machine drives random add / online / offline / remove /
alloc / free sequences through three machines and compares their whole state
after every step (including the errno and message of failed steps): one on
the fast backend, whose one-block onlines and offlines take the compiled
path (_blockops) where it applies; one on the fast backend with every
one-block write through the general path (the design's hooks); one on the
reference backend.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import conftest
from conftest import snapshots_equal
from hotmem.errors import ConfigError, HotplugError
from hotmem.invariants import check

DIMM = 0x100000000
BLOCK = 128 << 20
SLOTS = 4


def trio(**kw):
    """(fast, general, reference): see the module docstring."""
    return conftest.trio(**{"boot_memory": "128M", **kw})


def _outcome(m, fn):
    try:
        out = fn(m)
    except HotplugError as err:
        return (err.errno, err.message)
    except ConfigError as err:
        return ("ConfigError", str(err))
    return ("zone", out.zid) if hasattr(out, "zid") else None


def both(machines, fn):
    """Run fn on every machine; all must fail the same way or all succeed
    (an online returning the same zone)."""
    out = [_outcome(m, fn) for m in machines]
    assert out.count(out[0]) == len(out), out
    return out[0]


@settings(max_examples=25, stateful_step_count=14, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
class FastVsReference(RuleBasedStateMachine):
    machine_args = dict(kernel="6.12", memmap_on_memory="y")
    block = BLOCK          # bytes per memory block
    first_block = 32       # the block at DIMM

    def __init__(self):
        super().__init__()
        self.a, self.g, self.b = self.ms = trio(**self.machine_args)

    @rule(slot=st.integers(0, SLOTS - 1), n=st.integers(1, 2))
    def add(self, slot, n):
        both(self.ms, lambda m: m.add(DIMM + slot * self.block, n * self.block))

    @initialize(n=st.integers(0, SLOTS), kind=st.sampled_from(
        ["online", "online_kernel", "online_movable"]), batched=st.booleans())
    def start_online(self, n, kind, batched):
        """Most runs start with memory online and untouched (uniform chunks on
        the fast machine), from which allocations and offlines move away."""
        if n:
            self.add_online(0, n, kind, batched)

    @rule(slot=st.integers(0, SLOTS - 1), n=st.integers(1, 2), kind=st.sampled_from(
        ["online", "online_kernel", "online_movable"]), batched=st.booleans())
    def add_online(self, slot, n, kind, batched):
        """A DIMM added and onlined as udev would (one write per block) or as a
        scenario step does (online_blocks)."""
        def go(m):
            blocks = m.add(DIMM + slot * self.block, n * self.block)
            if batched:
                m.online_blocks(blocks, kind, stop_on_error=False)
            else:
                for blk in blocks:
                    try:
                        m.online(blk, kind)
                    except HotplugError:
                        pass
        both(self.ms, go)

    @rule(i=st.integers(0, SLOTS), kind=st.sampled_from(
        ["online", "online_kernel", "online_movable"]))
    def online(self, i, kind):
        both(self.ms, lambda m: m.online(self.first_block + i, kind))

    @rule(i=st.integers(0, SLOTS))
    def offline(self, i):
        both(self.ms, lambda m: m.offline(self.first_block + i))

    @rule(i=st.integers(-1, SLOTS), how=st.sampled_from(["np.int64", "bool", "boot", "beyond"]),
          kind=st.sampled_from(["online", "online_movable", "offline", "bogus", None]))
    def odd_write(self, i, how, kind):
        """What the compiled path declines and the general path decides: ids
        that are numpy integers, bools, boot memory or beyond the machine,
        and online types that are not."""
        blk = {"np.int64": np.int64(self.first_block + i), "bool": i > 0,
               "boot": max(i, 0), "beyond": self.a.nr_blocks + i}[how]
        if kind is None:
            both(self.ms, lambda m: m.offline(blk))
        else:
            both(self.ms, lambda m: m.online(blk, kind))

    @rule(slot=st.integers(0, SLOTS - 1))
    def remove(self, slot):
        both(self.ms, lambda m: m.remove(DIMM + slot * self.block, self.block))

    @rule(pages=st.integers(1, 3000), kind=st.sampled_from(["movable", "unmovable"]),
          placement=st.sampled_from(["lowest", "random", "kernel"]), seed=st.integers(0, 9),
          zone=st.sampled_from([None, "Normal", "Movable", "DMA"]))
    def alloc(self, pages, kind, placement, seed, zone):
        both(self.ms, lambda m: m.alloc(pages, kind=kind, zone=zone, placement=placement,
                                        seed=seed))

    @rule(pages=st.integers(1, 500), kind=st.sampled_from(["movable", "unmovable"]),
          seed=st.integers(0, 9))
    def free(self, pages, kind, seed):
        both(self.ms, lambda m: m.free(pages, kind=kind, seed=seed))

    @rule(i=st.integers(0, SLOTS), n=st.integers(1, SLOTS + 1), kind=st.sampled_from(
        ["online", "online_kernel", "online_movable"]))
    def online_many(self, i, n, kind):
        out = []
        both(self.ms, lambda m: out.append(
            [(blk, err and err.errno) for blk, err in m.online_blocks(
                range(self.first_block + i, self.first_block + i + n), kind,
                stop_on_error=False)]))
        assert not out or (len(out) == 3 and out.count(out[0]) == 3), out

    @rule(i=st.integers(0, SLOTS), n=st.integers(1, SLOTS + 1))
    def offline_many(self, i, n):
        out = []
        both(self.ms, lambda m: out.append(
            [(blk, err and err.errno) for blk, err in m.offline_blocks(
                range(self.first_block + i, self.first_block + i + n), stop_on_error=False)]))
        assert not out or (len(out) == 3 and out.count(out[0]) == 3), out

    @rule(i=st.integers(0, SLOTS))
    def write_out(self, i):
        """The fast machine writes block i's uniform chunks out to its planes:
        the same state in the other representation."""
        s, e = self.a.block_range(self.first_block + i)
        self.a.pages.expand(s, min(e, self.a.nr_pfns))

    @rule(i=st.integers(0, SLOTS))
    def fold(self, i):
        """The fast machine folds block i's chunks that hold a uniform state
        back to descriptors (as after frees that leave it so)."""
        s, e = self.a.block_range(self.first_block + i)
        self.a.pages.fold(s, min(e, self.a.nr_pfns))

    @invariant()
    def same_state(self):
        snap = self.a.snapshot()
        assert snapshots_equal(snap, self.g.snapshot()) == []
        assert snapshots_equal(snap, self.b.snapshot()) == []
        check(self.a)
        # the general machine never takes the compiled path
        assert self.g.block_ops.nr_onlined == self.g.block_ops.nr_offlined == 0


TestFastVsReference = FastVsReference.TestCase


class FastVsReferenceS390(FastVsReference):
    """The same on s390x: 256 MiB blocks, pageblock order 8, 1024 memmap pages."""

    machine_args = dict(arch="s390x", kernel="6.8", memmap_on_memory="y")
    block = 256 << 20
    first_block = 16


TestFastVsReferenceS390 = FastVsReferenceS390.TestCase
# the reference walks every page of 256 MiB blocks: fewer, shorter runs
TestFastVsReferenceS390.settings = settings(
    max_examples=15, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])


class FastVsReferenceMemmapFromBuddy(FastVsReference):
    """memmap_on_memory=n: each hot-added block's memmap is allocated from
    online memory, into sections the fast machine holds as descriptors."""

    machine_args = dict(kernel="6.12", memmap_on_memory="n")


class FastVsReference61(FastVsReference):
    """6.1: ZONE_MOVABLE counts as lowmem in the watermarks."""

    machine_args = dict(kernel="6.1", memmap_on_memory="y")


class FastVsReferenceArm64(FastVsReference):
    """arm64 7.3: the MEM_GOING_OFFLINE notifier refuses an offline that splits
    a vmemmap leaf (every block's, with its memmap on it), on every path."""

    machine_args = dict(arch="arm64-4k", kernel="7.3", memmap_on_memory="y")


class FastVsReferenceAutoMovable(FastVsReference):
    """online_policy=auto-movable: a plain "online" is decided by the ratio
    (general path only), online_kernel / online_movable are not."""

    machine_args = dict(kernel="6.12", memmap_on_memory="y", online_policy="auto-movable")


TestFastVsReferenceMemmapFromBuddy = FastVsReferenceMemmapFromBuddy.TestCase
TestFastVsReference61 = FastVsReference61.TestCase
TestFastVsReferenceArm64 = FastVsReferenceArm64.TestCase
TestFastVsReferenceAutoMovable = FastVsReferenceAutoMovable.TestCase
for _case in (TestFastVsReferenceMemmapFromBuddy, TestFastVsReference61,
              TestFastVsReferenceArm64, TestFastVsReferenceAutoMovable):
    _case.settings = settings(max_examples=10, stateful_step_count=12, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("strategy", ["ctz", "get_order_aligned", "page"])
def test_free_strategies_same_state(strategy):
    """Page-by-page, aligned get_order and ctz chunks all end in the same buddy state."""
    from hotmem import _core
    from hotmem.reference import RefPageState
    states = [_core.PageState(1 << 16, 9, 10, 2), RefPageState(1 << 16, 9, 10, 2)]
    for p in states:
        p.set_pageblocks(0, 1 << 16, 1, 0)
        p.free_range(512, 40000, _core.FREE_STRATEGIES[strategy])
        p.free_range(40960, 65536, _core.FREE_STRATEGIES["ctz"])
    a, b = states
    assert np.array_equal(a.nr_free, b.nr_free)
    ha, oa = a.free_blocks(0, 1 << 16)
    hb, ob = b.free_blocks(0, 1 << 16)
    assert np.array_equal(ha, hb) and np.array_equal(oa, ob)
    # the canonical buddy decomposition of [512, 40000) + [40960, 65536)
    assert a.nr_free[0, 1].tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 62]
