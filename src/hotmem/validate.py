"""Input checks shared by the scenario parser, the command line and the
Python API: values shortened for messages, bounded whole numbers, seeds,
and ranges checked against the machine's address space before any array
over them is built.

Pure functions: they read what they need from their arguments and change
nothing.
"""
from __future__ import annotations

import reprlib
from typing import Protocol, TypeGuard

import numpy as np

from .errors import ConfigError, HotplugError


class Machine(Protocol):
    """What the range checks read of a machine (hotmem.state.MachineState
    has it; this module stays below it, so no import)."""

    block_size: int
    max_phys: int
    nr_blocks: int

# a message quotes at most this many characters of a value
SHORT = 40
# whole numbers hotmem accepts anywhere are below 2**64 (physical addresses,
# sizes, seeds); block ids and page counts below 2**40
U64 = 1 << 64
MAX_COUNT = 1 << 40


class _Short(reprlib.Repr):
    def __init__(self, limit: int):
        super().__init__()
        self.maxlevel, self.maxstring, self.maxother = 2, limit, limit
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4

    def repr_int(self, x: int, level: int) -> str:
        # repr() of an int of more than 4300 digits raises ValueError
        if x.bit_length() > 128:
            return f"<{x.bit_length()}-bit number>"
        return repr(x)


def short(value: object, limit: int = SHORT) -> str:
    """repr() of value, at most about ``limit`` characters, on one line."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return _Short(limit).repr_int(value, 0)
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    s = _Short(limit).repr(value)
    return s if len(s) <= 2 * limit else s[:2 * limit] + "..."


def clip(text: str, limit: int = 120) -> str:
    """Text for a message: one line (unprintable characters escaped), at most
    ``limit`` characters."""
    if len(text) > 4 * limit:
        text = text[:4 * limit]
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= limit else out[:limit - 3] + "..."


def is_int(value: object) -> TypeGuard[int | np.integer]:
    """A whole number: int or numpy integer, not bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: object, what: str, lo: int = 0, hi: int = U64 - 1) -> int:
    """value as an int in [lo, hi], or ConfigError naming ``what``."""
    if not is_int(value):
        raise ConfigError(f"{what}: {short(value)} is not a whole number")
    v = int(value)
    if not lo <= v <= hi:
        raise ConfigError(f"{what}: {short(v)} is not between {lo} and {hi}")
    return v


def check_seed(seed: object, what: str = "seed") -> int:
    """A random seed: a whole number from 0 to 2**64 - 1 (numpy's
    default_rng refuses negative seeds with a ValueError of its own)."""
    return check_int(seed, what, 0, U64 - 1)


def check_count(pages: object, what: str = "pages") -> int:
    """A page count: a whole number from 1 to 2**40."""
    return check_int(pages, what, 1, MAX_COUNT)


def check_node(nid: object, nr_nodes: int, what: str = "node") -> int:
    """A node id the machine has."""
    return check_int(nid, what, 0, nr_nodes - 1)


def check_remove_range(m: Machine, start: int, size: int) -> None:
    """try_remove_memory() of [start, start + size) reaching beyond the
    machine's physical address space: no memory was ever added there, so
    EINVAL, decided before an array over the range's blocks is built (a
    remove of 1 << 62 bytes would otherwise ask numpy for 2**35 block ids).
    Call after the alignment check; the message is the one the per-block
    check gives for such a range (its first block)."""
    if start + size > m.max_phys:
        blk = start // m.block_size
        raise HotplugError("EINVAL", f"no memory was added at memory{blk}", block=blk)


def check_block_ids(m: Machine, lo: int, hi: int, what: str = "blocks") -> None:
    """Block ids lo..hi (inclusive) exist in the machine's address space:
    checked before a list of them is built."""
    last = m.nr_blocks - 1
    if lo < 0 or hi > last:
        raise ConfigError(f"{what}: memory{hi if hi > last else lo} is beyond the machine's "
                          f"blocks (memory0 .. memory{last})")
