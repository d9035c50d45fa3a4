"""Shared helpers: machines that check their invariants after every operation."""
import numpy as np
import pytest

from hotmem.invariants import check
from hotmem.machine import Machine

GiB = 1 << 30
MiB = 1 << 20


class CheckedMachine(Machine):
    """A Machine whose every operation is followed by an invariant check."""

    def _checked(name):
        def op(self, *args, **kw):
            out = getattr(Machine, name)(self, *args, **kw)
            check(self)
            return out
        op.__name__ = name
        return op

    add = _checked("add")
    online = _checked("online")
    offline = _checked("offline")
    remove = _checked("remove")
    alloc = _checked("alloc")
    free = _checked("free")
    del _checked


@pytest.fixture
def machine():
    """Factory for checked machines."""
    def make(**kw):
        m = CheckedMachine(**kw)
        check(m)
        return m
    return make


def snapshots_equal(a: dict, b: dict) -> list[str]:
    """Names of the snapshot fields that differ."""
    diff = []
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            same = x.keys() == y.keys() and all(np.array_equal(np.asarray(x[k]), np.asarray(y[k]))
                                                for k in x)
        elif isinstance(x, tuple):
            same = all(np.array_equal(u, v) for u, v in zip(x, y, strict=True))
        elif isinstance(x, np.ndarray):
            same = np.array_equal(x, y)
        else:
            same = x == y
        if not same:
            diff.append(key)
    return diff


def buddy_orders(m, zone_name="Movable", nid=0):
    """Free blocks per order of a zone (all migratetypes), as a list."""
    z = m.zone_by_name(zone_name, nid)
    return [int(x) for x in m.pages.nr_free[z.zid].sum(axis=0)]


def trio(**kw):
    """(fast, general, reference) machines with ``kw``: the compiled backend
    with its one-pass and one-block fast paths, the same backend with
    ``fast_paths`` off (every write through the design's hooks), and the
    pure-Python reference backend."""
    base = dict(arch="x86_64", max_memory="8G")
    base.update(kw)
    general = Machine(backend="fast", **base)
    general.fast_paths = False
    return Machine(backend="fast", **base), general, Machine(backend="reference", **base)

