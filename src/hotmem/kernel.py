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

# The last minor of each major series (4.20 was followed by 5.0, 5.19 by 6.0,
# 6.19 by 7.0) and the newest release hotmem models.
LAST_MINOR = {4: 20, 5: 19, 6: 19}
OLDEST = (4, 14)
NEWEST = (7, 3)


@dataclass(frozen=True, order=True)
class Kernel:
    """A kernel release (major, minor) and the semantics it implies."""

    major: int
    minor: int

    @classmethod
    def parse(cls, value: object) -> Kernel:
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
        newest = cls(*NEWEST)
        if k > newest:
            if k.major in LAST_MINOR and k.minor > LAST_MINOR[k.major]:
                raise ConfigError(f"kernel: {k} was never released ({k.major}.x ends at "
                                  f"{k.major}.{LAST_MINOR[k.major]}); the newest release "
                                  f"hotmem models is {newest}")
            raise ConfigError(f"kernel: {k} is newer than the newest release hotmem models "
                              f"({newest})")
        if k < cls(*OLDEST):
            raise ConfigError(f"kernel: {k} is older than the eras hotmem models "
                              f"({cls(*OLDEST)} .. {newest})")
        if k.minor > LAST_MINOR.get(k.major, NEWEST[1]):
            raise ConfigError(f"kernel: {k} was never released ({k.major}.x ends at "
                              f"{k.major}.{LAST_MINOR[k.major]}); the newest release hotmem "
                              f"models is {newest}")
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

    # ---- /proc formats, 6.13 .. 7.3 (docs/kernel-notes.md, "Eras 6.13 .. 7.3")

    @property
    def zoneinfo_pcp_high_min_max(self) -> bool:
        """/proc/zoneinfo prints each per-cpu pageset's ``high_min:`` and
        ``high_max:`` and pads count/high/batch to match (zoneinfo_show_print,
        6.13)."""
        return self.at_least(6, 13)

    @property
    def zoneinfo_nr_free_pages_blocks(self) -> bool:
        """NR_FREE_PAGES_BLOCKS, free pages in buddy blocks of pageblock order or
        more outside MIGRATE_ISOLATE, printed after nr_free_pages (6.15)."""
        return self.at_least(6, 15)

    @property
    def zoneinfo_nr_bounce(self) -> bool:
        """The NR_BOUNCE zone counter ``nr_bounce``, removed in 6.16."""
        return not self.at_least(6, 16)

    @property
    def zoneinfo_highatomic(self) -> bool:
        """``reserved_highatomic:`` and ``free_highatomic:`` after start_pfn
        (zone->nr_reserved_highatomic, zone->nr_free_highatomic), "mm: vmstat:
        output reserved_highatomic and free_highatomic in zoneinfo" (posted
        2025-10-27, after 6.18's merge window: taken as 6.19; in 7.2.13)."""
        return self.at_least(6, 19)

    @property
    def node_stat_nr_balloon_pages(self) -> bool:
        """NR_BALLOON_PAGES node counter (``nr_balloon_pages`` in the per-node
        stats, ``Balloon:`` in meminfo): "meminfo: add a per node counter for
        balloon drivers", in linux-next before 6.15's merge window (6.15)."""
        return self.at_least(6, 15)

    @property
    def lowmem_reserve_follows_managed(self) -> bool:
        """adjust_managed_page_count() calls setup_per_zone_lowmem_reserve(), so
        lowmem_reserve ("protection:") and totalreserve_pages follow every
        change of managed pages (a balloon, virtio-mem's fake offline); before,
        they kept the managed pages of the last init_per_zone_wmark_min().
        "mm: fix bug in some memory information update" (v1 posted 2024-12-13:
        taken as 6.14).  The captures agree: 6.12 keeps them, 7.3 follows."""
        return self.at_least(6, 14)

    @property
    def kpageflags_unpopulated_zero(self) -> bool:
        """kpage_read() writes 0 for a pfn without an online memmap
        (pfn_to_online_page() NULL) where kpageflags_read() wrote
        stable_page_flags(NULL) = KPF_NOPAGE: offline, never onlined and
        removed pfns read 0x0.  "fs/proc/page: Refactoring to reduce code
        duplication." (v4 posted 2025-03-18, still in review when 6.15's merge
        window opened: taken as 6.16; in 7.2.13 and 7.3.4)."""
        return self.at_least(6, 16)

    # ---- hotplug operations, 6.14 .. 7.3 (predicates for the operation code)

    @property
    def mhp_default_online_type_config(self) -> bool:
        """The boot default of auto_online_blocks is the build-time choice
        CONFIG_MHP_DEFAULT_ONLINE_TYPE_{OFFLINE,ONLINE_AUTO,ONLINE_KERNEL,
        ONLINE_MOVABLE} (mhp_get_default_online_type), replacing the boolean
        CONFIG_MEMORY_HOTPLUG_DEFAULT_ONLINE: upstream 6.14, and already in
        Debian's 6.12.117 stable tree (absent in 6.1.192).  Debian picks
        ONLINE_AUTO ("online") in 6.12.117, 7.2 and 7.3; memhp_default_state=
        still overrides."""
        return self.at_least(6, 12)

    @property
    def memory_block_advise_max_size(self) -> bool:
        """x86 caps its probed memory block size by
        memory_block_advised_max_size(), which ACPI CEDT/CXL window alignment
        lowers at boot (drivers/base/memory.c, 6.16).  No effect without CXL
        windows."""
        return self.at_least(6, 16)

    @property
    def isolate_standalone_bit(self) -> bool:
        """MIGRATE_ISOLATE is the pageblock bit PB_migrate_isolate beside the
        migratetype (6.17): get_pfnblock_migratetype() reports Isolate while it
        is set, and undo_isolate_page_range() only clears it, so a pageblock
        left by a failed offline keeps the migratetype it had before
        isolation, where 6.16 and older reset it to MIGRATE_MOVABLE."""
        return self.at_least(6, 17)

    @property
    def online_isolates_movable(self) -> bool:
        """online_pages() initialises the range MIGRATE_MOVABLE with the isolate
        bit set (move_pfn_range_to_zone(..., MIGRATE_MOVABLE, true)) instead of
        MIGRATE_ISOLATE, then clears the bit (6.17, with the standalone bit)."""
        return self.at_least(6, 17)

    @property
    def no_prepare_online_notifier(self) -> bool:
        """MEM_PREPARE_ONLINE / MEM_FINISH_OFFLINE (s390's memmap-on-memory
        notifiers around memory_block_online/offline) and
        MHP_OFFLINE_INACCESSIBLE are gone: s390 standby memory is configured
        per block by sclp instead (6.19; present in 6.12.117, absent in 7.2.13
        and 7.3.4).  enum memory_block_state itself is older (in 6.12.117).
        The sysfs ``state`` strings do not change."""
        return self.at_least(6, 19)

    @property
    def driver_managed_online_type(self) -> bool:
        """__add_memory_driver_managed(nid, start, size, name, flags,
        online_type): a driver (kmem) passes its own online type instead of
        mhp_get_default_online_type(), EINVAL outside MMOP_OFFLINE ..
        MMOP_ONLINE_MOVABLE (mm/memory_hotplug.c; absent in 7.2.13, present in
        7.3.4: 7.3)."""
        return self.at_least(7, 3)

    @property
    def offline_and_remove_ranges(self) -> bool:
        """offline_and_remove_memory_ranges(): offline every block of every
        range first, roll all back if one fails, then remove them all; an
        already offline block counts as success (absent in 7.2.13, present in
        7.3.4: 7.3).  offline_and_remove_memory() is one range of it."""
        return self.at_least(7, 3)

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
