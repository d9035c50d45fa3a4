"""A random campaign through the Python API: the compiled core against the
pure-Python reference on every arch, era (5.13 .. 7.3), design, memmap mode, online policy
and 1-3 nodes.

Each sequence builds one machine on each backend (backend="fast" and
backend="reference"), and a third on the fast backend whose one-block onlines
and offlines all take the general path (``fast_paths`` off: never the
compiled one of _blockops), and applies the same random operations to all
three: add, online, offline, remove (one block or many), online_blocks /
offline_blocks, alloc and free, valid and invalid.  After every operation:

- the three machines returned the same thing or failed with the same errno
  and message (or the same ConfigError);
- a failed operation left the machine exactly as it was (full ``snapshot()``
  before and after, on every machine);
- the three machines' snapshots are equal;
- ``hotmem.invariants.check`` holds (on the fast one: the states are equal).

CI runs a short budget.  ``HOTMEM_CAMPAIGN_LONG=1`` runs 10,000 sequences
(``HOTMEM_CAMPAIGN_SEQUENCES`` to change it) and prints the figures; the same
from the command line, with progress:

    python tests/test_campaign.py --sequences 10000 [--seed 0]
"""
from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from hotmem.arch import ARCHES, boot_ram_ranges
from hotmem.constants import MiB
from hotmem.errors import ConfigError, HotplugError
from hotmem.invariants import InvariantError, check
from hotmem.kernel import Kernel
from hotmem.machine import Machine
from hotmem.memory import BlockResults

sys.path.insert(0, os.path.dirname(__file__))
from conftest import snapshots_equal  # noqa: E402

MAINLINE_KERNELS = ("5.13", "5.15", "6.1", "6.3", "6.6", "6.7", "6.8", "6.10", "6.11", "6.12",
                    "6.16", "6.17", "6.19", "7.3")
ONLINE_TYPES = ("online", "online_kernel", "online_movable", "offline", "bogus")
SLOTS = 4


@dataclass
class Stats:
    sequences: int = 0
    operations: int = 0
    failed_operations: int = 0
    compiled_writes: int = 0    # one-block onlines / offlines the compiled path took
    divergences: list = field(default_factory=list)
    crashes: list = field(default_factory=list)
    configs: set = field(default_factory=set)
    seconds: float = 0.0


def machine_config(rnd: random.Random) -> dict:
    """A random machine small enough for the reference backend."""
    r = rnd.random()
    design = "rfc2018" if r < 0.2 else "none" if r < 0.3 else "mainline"
    name = rnd.choice(sorted(ARCHES))
    a = ARCHES[name]
    kernel = "4.20" if design == "rfc2018" else rnd.choice(MAINLINE_KERNELS)
    modes = ["n", "y"] + (["force"] if design == "mainline" and Kernel.parse(kernel).has_force_mode
                          else [])
    if design == "none":
        modes = ["n"]
    # the smallest block the arch allows (a section) keeps the reference fast;
    # the arch's own block size too, where it is not much larger
    blocks = {a.section_size, max(a.section_size, 128 * MiB)}
    if a.block_size >> a.page_shift <= 1 << 16:
        blocks.add(a.block_size)
    block = rnd.choice(sorted(blocks))
    boot = rnd.choice((128 * MiB, 192 * MiB, 256 * MiB))
    boot_end = max(e for _, e in boot_ram_ranges(a, boot)) << a.page_shift
    hot_base = -(-boot_end // block) * block
    return dict(arch=name, kernel=kernel, design=design, memmap_on_memory=rnd.choice(modes),
                online_policy=rnd.choice(("contig-zones", "auto-movable")),
                auto_movable_ratio=rnd.choice((0, 100, 301)), nr_nodes=rnd.randint(1, 3),
                boot_memory=boot, block_size=block, thp=rnd.random() < 0.5,
                max_memory=hot_base + SLOTS * block,
                rfc_alignment_fix=design == "rfc2018" and rnd.random() < 0.5,
                rfc_refuse_hazard=design == "rfc2018" and rnd.random() < 0.3)


def random_op(rnd: random.Random, m: Machine):
    """(description, function of a machine) for one random operation."""
    bs = m.block_size
    first = -(-max(e for _, e in m.boot_ranges) // m.pages_per_block)
    base = first * bs
    slot = rnd.randrange(SLOTS)
    present = [int(b) for b in m.present_blocks() if b >= first]
    if present and rnd.random() < 0.7:
        blk = rnd.choice(present)
    else:
        blk = first + rnd.randint(-1, SLOTS)      # boot, hot-added and absent blocks
    nid = rnd.choice([0] * 6 + [1, 2, 3])          # node 3 never exists
    kind = rnd.choice(("movable", "unmovable"))
    r = rnd.random()
    if not present and rnd.random() < 0.6:
        r = 0.0                                   # nothing hot-added yet: mostly add
    if r < 0.22:
        n = rnd.choice((1, 1, 1, 2, SLOTS - slot, SLOTS + 1 - slot))
        start = base + slot * bs + (rnd.choice((0, 0, 0, 0, 1, 4096)) if rnd.random() < 0.1 else 0)
        driver = rnd.choice(("acpi", "acpi", "direct"))
        return (f"add({start:#x}, {n * bs:#x}, nid={nid}, driver={driver!r})",
                lambda x: x.add(start, n * bs, nid=nid, driver=driver))
    if r < 0.40:
        t = rnd.choice(ONLINE_TYPES[:3] * 4 + ONLINE_TYPES[3:])
        return f"online({blk}, {t!r})", lambda x: x.online(blk, t)
    if r < 0.52:
        return f"offline({blk})", lambda x: x.offline(blk)
    if r < 0.60:
        n = rnd.choice((1, 1, 2, SLOTS))
        ids = [first + slot + i for i in range(n)]
        rnd.shuffle(ids)
        t = rnd.choice(ONLINE_TYPES[:3])
        stop = rnd.random() < 0.5
        if rnd.random() < 0.5:
            return (f"online_blocks({ids}, {t!r}, {stop})",
                    lambda x: x.online_blocks(ids, t, stop_on_error=stop))
        return f"offline_blocks({ids}, {stop})", lambda x: x.offline_blocks(ids, stop_on_error=stop)
    if r < 0.70:
        n = rnd.choice((1, 1, 2, SLOTS - slot))
        start = base + slot * bs
        return f"remove({start:#x}, {n * bs:#x})", lambda x: x.remove(start, n * bs)
    if r < 0.88:
        pages = rnd.choice((1, 7, 512, 1000, 5000, m.pages_per_block // 2, m.pages_per_block))
        zone = rnd.choice((None, None, "Normal", "Movable", "DMA", "DMA32"))
        placement = rnd.choice(("random", "lowest", "kernel"))
        seed = rnd.randrange(1000)
        return (f"alloc({pages}, {kind!r}, {zone!r}, {placement!r}, seed={seed}, nid={nid})",
                lambda x: x.alloc(pages, kind=kind, zone=zone, placement=placement, seed=seed,
                                  nid=nid))
    pages = rnd.choice((1, 100, 1000, None))
    seed = rnd.randrange(1000)
    return (f"free({pages}, {kind!r}, seed={seed}, nid={nid})",
            lambda x: x.free(pages, kind=kind, seed=seed, nid=nid))


def _outcome(fn, m):
    """What an operation gave: ("ok", value) or (error class, errno, message)."""
    try:
        out = fn(m)
    except HotplugError as err:
        return ("HotplugError", err.errno, err.message)
    except ConfigError as err:
        return ("ConfigError", str(err))
    except Exception as err:     # noqa: BLE001 - a crash is a finding, counted
        return ("crash", type(err).__name__, str(err)[:200])
    if isinstance(out, np.ndarray):
        out = ("array", out.tolist())
    elif isinstance(out, (list, BlockResults)):  # block ids, or (block, error or None) each
        out = [tuple((v.errno, v.message) if isinstance(v, HotplugError) else v for v in x)
               if isinstance(x, tuple) else int(x) for x in out]
    elif hasattr(out, "zid"):      # the zone a block went to
        out = ("zone", out.zid)
    return ("ok", out)


def run_sequence(seed: int, n_ops: int, stats: Stats) -> None:
    """One machine pair and n_ops operations; divergences go to stats."""
    rnd = random.Random(seed)
    cfg = machine_config(rnd)
    try:
        fast = Machine(backend="fast", **cfg)
    except ConfigError as err:
        ref_err = None
        try:
            Machine(backend="reference", **cfg)
        except ConfigError as e2:
            ref_err = str(e2)
        if ref_err != str(err):
            stats.divergences.append((seed, -1, "Machine()", f"{err} vs {ref_err}"))
        stats.sequences += 1
        return
    ref = Machine(backend="reference", **cfg)
    general = Machine(backend="fast", **cfg)
    general.fast_paths = False
    stats.configs.add((cfg["arch"], cfg["kernel"], cfg["design"], cfg["memmap_on_memory"],
                       cfg["online_policy"], cfg["nr_nodes"]))
    stats.sequences += 1

    def diverged(i, what, detail):
        stats.divergences.append((seed, i, what, detail))

    try:
        for i in range(n_ops):
            what, fn = random_op(rnd, fast)
            before = fast.snapshot()
            outs = (_outcome(fn, fast), _outcome(fn, ref), _outcome(fn, general))
            stats.operations += 1
            if outs[0] != outs[1]:
                diverged(i, what, f"fast {str(outs[0])[:200]} reference {str(outs[1])[:200]}")
                return
            if outs[0] != outs[2]:
                diverged(i, what, f"fast {str(outs[0])[:200]} general path {str(outs[2])[:200]}")
                return
            if outs[0][0] == "crash":
                stats.crashes.append((seed, i, what, outs[0][1:]))
            failed = outs[0][0] != "ok"
            # online_blocks / offline_blocks report per-block errors without raising
            if failed:
                stats.failed_operations += 1
                diff = snapshots_equal(before, fast.snapshot())
                if diff:
                    diverged(i, what, f"failed with {outs[0][1]} but changed {diff}")
                    return
            # equal snapshots: the reference's state is the fast one's, so a failed
            # operation left both unchanged and the invariants hold for both
            snap = fast.snapshot()
            diff = snapshots_equal(snap, ref.snapshot())
            if diff:
                diverged(i, what, f"fast and reference differ in {diff}")
                return
            diff = snapshots_equal(snap, general.snapshot())
            if diff:
                diverged(i, what, f"fast and general path differ in {diff}")
                return
            try:
                check(fast)
            except InvariantError as err:
                diverged(i, what, f"invariant: {str(err)[:200]}")
                return
    finally:
        ops, general_ops = fast.block_ops, general.block_ops
        if ops is not None and general_ops is not None:
            stats.compiled_writes += ops.nr_onlined + ops.nr_offlined
            if general_ops.nr_onlined or general_ops.nr_offlined:
                stats.divergences.append((seed, -1, "general path",
                                          "took the compiled path with fast_paths off"))


def campaign(sequences: int, seed0: int = 0, progress=None) -> Stats:
    stats = Stats()
    t0 = time.monotonic()
    for k in range(sequences):
        seed = seed0 + k
        run_sequence(seed, random.Random(seed ^ 0x5EED).randint(4, 20), stats)
        if progress is not None and (k + 1) % progress == 0:
            print(f"{k + 1} sequences, {stats.operations} operations, "
                  f"{len(stats.divergences)} divergences, {time.monotonic() - t0:.0f} s",
                  file=sys.stderr, flush=True)
    stats.seconds = time.monotonic() - t0
    return stats


def figures(stats: Stats) -> str:
    return (f"{stats.sequences} sequences, {stats.operations} operations "
            f"({stats.failed_operations} failed, {stats.compiled_writes} one-block writes "
            f"compiled), {len(stats.configs)} machine configurations, "
            f"{len(stats.divergences)} divergences, {len(stats.crashes)} crashes, "
            f"{stats.seconds:.0f} s")


def test_campaign():
    """40 sequences in CI (a few seconds); HOTMEM_CAMPAIGN_LONG=1: 10,000."""
    long = os.environ.get("HOTMEM_CAMPAIGN_LONG") == "1"
    n = int(os.environ.get("HOTMEM_CAMPAIGN_SEQUENCES", "10000")) if long else 40
    stats = campaign(n, seed0=int(os.environ.get("HOTMEM_CAMPAIGN_SEED", "0")),
                     progress=500 if long else None)
    print(figures(stats))
    assert stats.divergences == [], stats.divergences[:5]
    assert stats.crashes == [], stats.crashes[:5]
    assert stats.sequences == n
    assert stats.operations > 5 * n
    assert stats.failed_operations > 0
    assert stats.compiled_writes > 0


def test_campaign_configs_span_the_matrix():
    """The generator reaches every arch, every design, every mode and policy."""
    rnd = random.Random(1)
    cfgs = [machine_config(rnd) for _ in range(400)]
    assert {c["arch"] for c in cfgs} == set(ARCHES)
    assert {c["design"] for c in cfgs} == {"mainline", "none", "rfc2018"}
    assert {c["memmap_on_memory"] for c in cfgs} == {"n", "y", "force"}
    assert {c["online_policy"] for c in cfgs} == {"contig-zones", "auto-movable"}
    assert {c["nr_nodes"] for c in cfgs} == {1, 2, 3}
    assert {c["kernel"] for c in cfgs} == set(MAINLINE_KERNELS) | {"4.20"}


def test_campaign_catches_a_divergence(monkeypatch):
    """The checks can fail: a reference whose free_pages keeps the last page diverges."""
    from hotmem.reference import RefPageState
    real = RefPageState.free_pages

    def leaky(self, pfns):
        return real(self, pfns[:-1] if len(pfns) > 1 else pfns)
    monkeypatch.setattr(RefPageState, "free_pages", leaky)
    stats = Stats()
    for seed in range(100):
        run_sequence(seed, 20, stats)
        if stats.divergences:
            break
    assert stats.divergences
    assert "differ" in stats.divergences[0][3] or "changed" in stats.divergences[0][3]


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sequences", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    st = campaign(args.sequences, args.seed, progress=100)
    print(figures(st))
    for seed, op, what, detail in st.divergences[:20]:
        print(f"divergence: seed {seed} op {op} {what}: {detail}")
    for seed, op, what, detail in st.crashes[:20]:
        print(f"crash: seed {seed} op {op} {what}: {detail}")
    sys.exit(1 if st.divergences or st.crashes else 0)
