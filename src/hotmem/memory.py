"""drivers/base/memory.c as hotmem models it: memory block devices seen as a
list (what a udev rule or a shell loop writing memoryN/state does), onlined or
offlined in order with the result of doing them one by one; runs of
consecutive blocks that the design lets through are done in one pass."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from .errors import HotplugError
from .memory_hotplug import (check_block, check_online_type, offline_block, offline_run,
                             online_block, online_run, run_batchable, run_zone)
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


def _runs(blocks: list[int]) -> list[tuple[int, int]]:
    """(first, count) of each run of consecutive block ids, in the given order."""
    out: list[tuple[int, int]] = []
    for b in blocks:
        if out and out[-1][0] + out[-1][1] == b:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((b, 1))
    return out


def _many(m: MachineState, blocks: Iterable[object], stop_on_error: bool,
          batchable: Callable[[int, int], bool], do_batch: Callable[[int, int], bool],
          do_one: Callable[[int], object]) -> list[BlockResult]:
    """Walk the blocks in order.  From each block b the longest run of consecutive
    ids that ``batchable(b, x)`` accepts goes to ``do_batch(b, n)``, which returns
    False to decline; anything else goes to ``do_one(b)``."""
    out: list[BlockResult] = []
    ids = [check_block(m, b) for b in blocks]
    for first, count in _runs(ids):
        b = first
        while b < first + count:
            n = 0
            if m.design.batchable:
                # a driver's online-page callback or notifiers see every block
                while (b + n < first + count and m.device_of_block(b + n) is None
                       and batchable(b, b + n)):
                    n += 1
            if n > 1 and do_batch(b, n):
                out.extend((x, None) for x in range(b, b + n))
                b += n
                continue
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

    return _many(m, blocks, stop_on_error, lambda b, x: run_batchable(m, b, x, True), do_batch,
                 lambda b: online_block(m, b, online_type))


def offline_blocks(m: MachineState, blocks: Iterable[object],
                   stop_on_error: bool = True) -> list[BlockResult]:
    """Offline many blocks, in order, with the result of offlining them one by
    one; runs of consecutive online blocks of one zone whose pages are all free
    (but their memmap) are done in one pass."""
    return _many(m, blocks, stop_on_error, lambda b, x: run_batchable(m, b, x, False),
                 lambda b, n: offline_run(m, b, n), lambda b: offline_block(m, b))
