"""drivers/base/memory.c as hotmem models it: memory block devices seen as a
list (what a udev rule or a shell loop writing memoryN/state does), onlined or
offlined in order with the result of doing them one by one; runs of
consecutive blocks that the design lets through are done in one pass."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from .constants import IntArray
from .errors import HotplugError
from .memory_hotplug import (
    check_block,
    check_online_type,
    offline_block,
    offline_run,
    online_block,
    online_run,
    run_breaks,
    run_zone,
)
from .state import MachineState

BlockResult = tuple[int, HotplugError | None]


def block_list(ids: Iterable[int]) -> str:
    """memory33..memory63,memory65 style, for messages."""
    runs: list[list[int]] = []
    for b in sorted(int(b) for b in ids):
        if runs and b == runs[-1][1] + 1:
            runs[-1][1] = b
        else:
            runs.append([b, b])
    return ",".join(f"memory{a}" if a == b else f"memory{a}..memory{b}" for a, b in runs)


def _runs(ids: IntArray) -> list[tuple[int, int]]:
    """(first, count) of each run of consecutive block ids, in the given order."""
    if not len(ids):
        return []
    starts = np.flatnonzero(np.diff(ids) != 1) + 1
    firsts = np.concatenate(([0], starts))
    counts = np.diff(np.concatenate((firsts, [len(ids)])))
    return list(zip(ids[firsts].tolist(), counts.tolist(), strict=True))


def _block_ids(m: MachineState, blocks: Iterable[object]) -> IntArray:
    """check_block() of every block, in order (the first bad one raises)."""
    arr = np.asarray(blocks if isinstance(blocks, (list, tuple, np.ndarray)) else list(blocks))
    if arr.ndim == 1 and arr.dtype.kind in "iu" and len(arr):
        ids = arr.astype(np.int64)
        if ids.min() >= 0 and ids.max() < m.nr_blocks and m.blk_state[ids].all():
            return ids
    return np.array([check_block(m, b) for b in arr.tolist()], dtype=np.int64)


def _many(m: MachineState, blocks: Iterable[object], stop_on_error: bool, online: bool,
          do_batch: Callable[[int, int], bool],
          do_one: Callable[[int], object]) -> list[BlockResult]:
    """Walk the blocks in order.  From each block b the longest run of consecutive
    ids that may join b (memory_hotplug.run_breaks) goes to ``do_batch(b, n)``,
    which returns False to decline; anything else goes to ``do_one(b)``."""
    out: list[BlockResult] = []
    ids = _block_ids(m, blocks)
    for first, count in _runs(ids):
        end = first + count
        b = first
        runs: tuple[IntArray, IntArray] | None = None
        while b < end:
            n = 0
            if m.design.batchable:
                # a driver's online-page callback or notifiers see every block
                if runs is None:
                    runs = run_breaks(m, b, end, online)
                bad, breaks = runs
                k = int(np.searchsorted(bad, b))
                if k == len(bad) or bad[k] != b:
                    k = int(np.searchsorted(breaks, b, side="right"))
                    n = (int(breaks[k]) if k < len(breaks) else end) - b
            if n > 1 and do_batch(b, n):
                out.extend((x, None) for x in range(b, b + n))
                b += n
                continue
            runs = None  # the state the one-block path leaves is read again
            try:
                do_one(b)
                out.append((b, None))
            except HotplugError as err:
                out.append((b, err))
                if stop_on_error:
                    return out
            b += 1
    return out


def online_blocks(m: MachineState, blocks: Iterable[object], online_type: str = "online",
                  stop_on_error: bool = True) -> list[BlockResult]:
    """Online many blocks, in order, with the result of onlining them one by one;
    runs of consecutive offline blocks of one node and memmap layout are done in
    one pass.  Returns (block, error or None) per block attempted."""
    mmop = check_online_type(online_type)

    def do_batch(b: int, n: int) -> bool:
        zone = run_zone(m, b, n, mmop)
        if zone is None:
            return False
        online_run(m, b, n, zone)
        return True

    return _many(m, blocks, stop_on_error, True, do_batch,
                 lambda b: online_block(m, b, online_type))


def offline_blocks(m: MachineState, blocks: Iterable[object],
                   stop_on_error: bool = True) -> list[BlockResult]:
    """Offline many blocks, in order, with the result of offlining them one by
    one; runs of consecutive online blocks of one zone whose pages are all free
    (but their memmap) are done in one pass."""
    return _many(m, blocks, stop_on_error, False,
                 lambda b, n: offline_run(m, b, n), lambda b: offline_block(m, b))
