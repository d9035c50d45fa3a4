"""The compiled core against the pure-Python reference model, op by op.

A hypothesis state machine drives random add / online / offline / remove /
alloc / free sequences through two machines, one on each backend, and compares
their whole state after every step (including the errno of failed steps).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import snapshots_equal
from hotmem.errors import HotplugError
from hotmem.invariants import check
from hotmem.machine import Machine

DIMM = 0x100000000
BLOCK = 128 << 20
SLOTS = 4


def pair(**kw):
    base = dict(arch="x86_64", boot_memory="128M", max_memory="8G")
    base.update(kw)
    return Machine(backend="fast", **base), Machine(backend="reference", **base)


def both(a, b, fn):
    """Run fn on both machines; both must fail the same way or both succeed."""
    out = []
    for m in (a, b):
        try:
            fn(m)
            out.append(None)
        except HotplugError as err:
            out.append((err.errno, err.message))
    assert out[0] == out[1], out
    return out[0]


@settings(max_examples=25, stateful_step_count=14, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
class FastVsReference(RuleBasedStateMachine):
    machine_args = dict(kernel="6.12", memmap_on_memory="y")
    block = BLOCK          # bytes per memory block
    first_block = 32       # the block at DIMM

    def __init__(self):
        super().__init__()
        self.a, self.b = pair(**self.machine_args)

    @rule(slot=st.integers(0, SLOTS - 1), n=st.integers(1, 2))
    def add(self, slot, n):
        both(self.a, self.b, lambda m: m.add(DIMM + slot * self.block, n * self.block))

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
        both(self.a, self.b, go)

    @rule(i=st.integers(0, SLOTS), kind=st.sampled_from(
        ["online", "online_kernel", "online_movable"]))
    def online(self, i, kind):
        both(self.a, self.b, lambda m: m.online(self.first_block + i, kind))

    @rule(i=st.integers(0, SLOTS))
    def offline(self, i):
        both(self.a, self.b, lambda m: m.offline(self.first_block + i))

    @rule(slot=st.integers(0, SLOTS - 1))
    def remove(self, slot):
        both(self.a, self.b, lambda m: m.remove(DIMM + slot * self.block, self.block))

    @rule(pages=st.integers(1, 3000), kind=st.sampled_from(["movable", "unmovable"]),
          placement=st.sampled_from(["lowest", "random", "kernel"]), seed=st.integers(0, 9),
          zone=st.sampled_from([None, "Normal", "Movable", "DMA"]))
    def alloc(self, pages, kind, placement, seed, zone):
        both(self.a, self.b, lambda m: m.alloc(pages, kind=kind, zone=zone,
                                               placement=placement, seed=seed))

    @rule(pages=st.integers(1, 500), kind=st.sampled_from(["movable", "unmovable"]),
          seed=st.integers(0, 9))
    def free(self, pages, kind, seed):
        both(self.a, self.b, lambda m: m.free(pages, kind=kind, seed=seed))

    @rule(i=st.integers(0, SLOTS), n=st.integers(1, SLOTS + 1), kind=st.sampled_from(
        ["online", "online_kernel", "online_movable"]))
    def online_many(self, i, n, kind):
        out = []
        both(self.a, self.b, lambda m: out.append(
            [(blk, err and err.errno) for blk, err in m.online_blocks(
                range(self.first_block + i, self.first_block + i + n), kind,
                stop_on_error=False)]))
        assert len(out) in (0, 2) and (not out or out[0] == out[1]), out

    @rule(i=st.integers(0, SLOTS), n=st.integers(1, SLOTS + 1))
    def offline_many(self, i, n):
        out = []
        both(self.a, self.b, lambda m: out.append(
            [(blk, err and err.errno) for blk, err in m.offline_blocks(
                range(self.first_block + i, self.first_block + i + n), stop_on_error=False)]))
        assert len(out) in (0, 2) and (not out or out[0] == out[1]), out

    @rule(i=st.integers(0, SLOTS))
    def write_out(self, i):
        """The fast machine writes block i's uniform chunks out to its planes:
        the same state in the other representation."""
        s, e = self.a.block_range(self.first_block + i)
        self.a.pages.expand(s, min(e, self.a.nr_pfns))

    @invariant()
    def same_state(self):
        assert snapshots_equal(self.a.snapshot(), self.b.snapshot()) == []
        check(self.a)


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


TestFastVsReferenceMemmapFromBuddy = FastVsReferenceMemmapFromBuddy.TestCase
TestFastVsReference61 = FastVsReference61.TestCase
TestFastVsReferenceMemmapFromBuddy.settings = TestFastVsReference61.settings = settings(
    max_examples=10, stateful_step_count=12, deadline=None,
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
