"""drivers/base/memory.c as hotmem models it: memory block devices seen as a
list (what a udev rule or a shell loop writing memoryN/state does), onlined or
offlined in order with the result of doing them one by one; runs of
consecutive blocks that the design lets through are done in one pass."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import overload

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


class BlockResults(Sequence[BlockResult]):
    """(block, error or None) per block attempted, in order.  Runs of blocks
    done in one pass are held as (first, count), so the result of onlining a
    petabyte of memory blocks is a few runs, not millions of tuples."""

    def __init__(self) -> None:
        self._firsts: list[int] = []   # per segment: first block
        self._counts: list[int] = []   # blocks in it (1 for a block done alone)
        self._errors: list[HotplugError | None] = []
        self._ends: list[int] = []     # results up to and including the segment

    def ok_run(self, first: int, count: int) -> None:
        self._append(first, count, None)

    def one(self, blk: int, err: HotplugError | None) -> None:
        self._append(blk, 1, err)

    def _append(self, first: int, count: int, err: HotplugError | None) -> None:
        self._firsts.append(first)
        self._counts.append(count)
        self._errors.append(err)
        self._ends.append((self._ends[-1] if self._ends else 0) + count)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, i: int) -> BlockResult: ...
    @overload
    def __getitem__(self, i: slice) -> list[BlockResult]: ...

    def __getitem__(self, i: int | slice) -> BlockResult | list[BlockResult]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("block result index out of range")
        seg = bisect_right(self._ends, i)
        before = self._ends[seg] - self._counts[seg]
        return self._firsts[seg] + i - before, self._errors[seg]

    def __iter__(self) -> Iterator[BlockResult]:
        for first, count, err in zip(self._firsts, self._counts, self._errors, strict=True):
            for b in range(first, first + count):
                yield b, err

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BlockResults({list(self)!r})" if len(self) <= 16 else \
            f"<BlockResults of {len(self)} blocks>"


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
          do_one: Callable[[int], object]) -> BlockResults:
    """Walk the blocks in order.  From each block b the longest run of consecutive
    ids that may join b (memory_hotplug.run_breaks) goes to ``do_batch(b, n)``,
    which returns False to decline; anything else goes to ``do_one(b)``."""
    out = BlockResults()
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
                out.ok_run(b, n)
                b += n
                continue
            runs = None  # the state the one-block path leaves is read again
            try:
                do_one(b)
                out.one(b, None)
            except HotplugError as err:
                out.one(b, err)
                if stop_on_error:
                    return out
            b += 1
    return out


def online_blocks(m: MachineState, blocks: Iterable[object], online_type: str = "online",
                  stop_on_error: bool = True) -> BlockResults:
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
                   stop_on_error: bool = True) -> BlockResults:
    """Offline many blocks, in order, with the result of offlining them one by
    one; runs of consecutive online blocks of one zone whose pages are all free
    (but their memmap) are done in one pass."""
    return _many(m, blocks, stop_on_error, False,
                 lambda b, n: offline_run(m, b, n), lambda b: offline_block(m, b))
