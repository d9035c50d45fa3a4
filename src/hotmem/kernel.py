"""Kernel eras: which release's semantics a machine follows.

A release such as ``"6.1"`` selects every behaviour that changed over time.
Each property names the change and the release that made it; see
docs/kernel-notes.md for the sources.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError
from .validate import short

# MAJOR.MINOR[.SUBLEVEL][-EXTRAVERSION or +local]: "6.12", "6.1.192",
# "6.12.117+deb12-amd64", "6.8-rc3"; ASCII digits only, bounded lengths
_VERSION_RE = re.compile(r"([0-9]{1,2})\.([0-9]{1,3})(?:\.[0-9]{1,6})?"
                         r"(?:[-+][A-Za-z0-9][A-Za-z0-9.+~_-]{0,63})?")
MAX_VERSION_CHARS = 80


@dataclass(frozen=True, order=True)
class Kernel:
    """A kernel release (major, minor) and the semantics it implies."""

    major: int
    minor: int

    @classmethod
    def parse(cls, value) -> "Kernel":
        if isinstance(value, Kernel):
            return value
        if not isinstance(value, str):
            raise ConfigError(f"kernel: write the release as a string ('6.10'), not {short(value)}")
        s = value.strip(" \t")
        m = _VERSION_RE.fullmatch(s) if len(s) <= MAX_VERSION_CHARS else None
        if not m:
            raise ConfigError(f"kernel: {short(value)} is not a release such as '6.12' or "
                              "'6.12.117+deb12-amd64'")
        k = cls(int(m.group(1)), int(m.group(2)))
        if k < cls(4, 14) or k > cls(7, 99):
            raise ConfigError(f"kernel: {k} is outside the eras hotmem models (4.14 .. 7.x)")
        return k

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    # ---- memmap on memory

    @property
    def has_memmap_on_memory(self) -> bool:
        """memory_hotplug.memmap_on_memory exists (a08a2ae34613, 5.13)."""
        return self.at_least(5, 13)

    @property
    def single_block_memmap_on_memory(self) -> bool:
        """mhp_supports_memmap_on_memory(size) wants size == memory_block_size
        (5.13 .. 6.7; 6.8 splits multi-block adds into one altmap per block)."""
        return self.at_least(5, 13) and not self.at_least(6, 8)

    @property
    def has_force_mode(self) -> bool:
        """memmap_on_memory=force and the arch hook (6.6)."""
        return self.at_least(6, 6)

    @property
    def explicit_request_fails(self) -> bool:
        """An explicit MHP_MEMMAP_ON_MEMORY that cannot be met returns -EINVAL
        before 6.6; from 6.6 add_memory_resource falls back silently."""
        return not self.at_least(6, 6)

    @property
    def remove_needs_single_block(self) -> bool:
        """try_remove_memory refuses ranges of more than one block that have a
        self-hosted memmap ("wrong granularity"), until 6.8."""
        return not self.at_least(6, 8)

    # ---- struct page states (what /proc/kpageflags shows)

    @property
    def vmemmap_reserved(self) -> bool:
        """Self-hosted vmemmap pages keep PG_reserved before the PageOffline
        memmap initialisation (6.11)."""
        return not self.at_least(6, 11)

    @property
    def vmemmap_self_hosted_flag(self) -> bool:
        """PG_vmemmap_self_hosted (= PG_owner_priv_1) on vmemmap pages (6.0)."""
        return self.at_least(6, 0)

    # ---- watermarks and /proc formats

    @property
    def movable_wmark_like_highmem(self) -> bool:
        """ZONE_MOVABLE gets the highmem-style min watermark and is left out of
        lowmem_pages: present in Debian's 6.12, absent in 6.1; the release in
        between that made the change is not verified (taken as 6.12)."""
        return self.at_least(6, 12)

    @property
    def zoneinfo_promo(self) -> bool:
        """/proc/zoneinfo prints the promo watermark: 6.12 does, 6.1 does not
        (release in between not verified; taken as 6.12)."""
        return self.at_least(6, 12)

    # ---- buddy

    @property
    def max_order_name(self) -> str:
        """MAX_ORDER was exclusive before 6.4, MAX_PAGE_ORDER from 6.8."""
        if self.at_least(6, 8):
            return "MAX_PAGE_ORDER"
        return "MAX_ORDER"

    @property
    def online_free_strategy(self) -> str:
        """How online_pages_range hands a range to the buddy: page by page before
        5.0, chunks afterwards (ctz-aligned since the 2019 fix)."""
        if not self.at_least(5, 0):
            return "page"
        return "ctz"


DEFAULT_KERNEL = "6.12"
RFC_KERNEL = "4.20"
