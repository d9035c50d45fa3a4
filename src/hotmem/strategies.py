"""Scan strategies for the hot paths of hotplug, as selectable choices that give
identical answers and differ only in cost, each with a pure-Python reference.

Three questions, the ones the 2018 RFC review and the later kernels argued about:

* **Which pages of a range are vmemmap** (memmap on memory) — per section, the
  number of pages at the section start that hold the memmap:

  ``per_page``         the RFC: PageVmemmap(pfn_to_page(pfn)) on every pfn;
  ``wordwise``         the same count over the bit-plane, 64 pages per load (popcount);
  ``prefix``           word-wise relying on the layout: ctz of the first word that is
                       not all vmemmap, m/64 + 1 words per section;
  ``section_summary``  a per-section counter kept on the side, O(sections);
  ``block_metadata``   mainline: memory_block->nr_vmemmap_pages (altmap->free),
                       O(1) per block.

  All five agree while the machine keeps the layout hotplug gives it: a block's
  vmemmap pages are its first ``nr_vmemmap_pages`` pages, set while it is online
  (:func:`check_vmemmap_layout` tests that).

* **Isolation checks** — has_unmovable_pages() and test_pages_isolated():
  ``per_page`` (a loop over pfns) or ``wordwise`` (a reduction over the planes);
  ``core`` is the same reduction as ``PageState.has_unmovable`` /
  ``first_not_free`` run on the live state without copying.

* **Freeing a range to the buddy** — ``page`` (one page at a time, before 2019),
  ``get_order`` (4.20's online_pages_blocks), ``get_order_aligned`` (the 2019 fix),
  ``ctz`` (max-order chunks, current): ``PageState.free_range``.  Their final
  states agree on every range for ``page``, ``get_order_aligned`` and ``ctz``;
  ``get_order`` agrees on ranges whose start is aligned to the max order and
  leaves misaligned blocks otherwise (the bug the 2019 fix fixed).

The ``*_machine`` helpers run the kernels on a machine's live planes
(``_scan`` cimports ``_core.PageState``; nothing is copied); on the
pure-Python reference backend they copy the plane words first.  The
benchmarks time the array kernels on prepared arrays.
"""
from __future__ import annotations

from typing import Final, Literal, TypeVar, get_args

import numpy as np
import numpy.typing as npt

from . import _core, _scan
from .backend import PageBackend
from .constants import FREE_STRATEGIES as _FREE_STRATEGIES
from .constants import MEM_ONLINE, P_BUDDY, P_RESERVED, P_UNMOVABLE, P_VMEMMAP, FreeStrategy
from .reference import RefPageState
from .state import MachineState

VmemmapStrategy = Literal["per_page", "wordwise", "prefix", "section_summary",
                          "block_metadata"]
# the strategies that run on plane copies; "core" asks the page state itself
ScanStrategy = Literal["per_page", "wordwise"]
IsolationStrategy = Literal[ScanStrategy, "core"]

VMEMMAP_STRATEGIES: Final[tuple[VmemmapStrategy, ...]] = get_args(VmemmapStrategy)
ISOLATION_STRATEGIES: Final[tuple[IsolationStrategy, ...]] = (*get_args(ScanStrategy), "core")
# ctz, get_order, get_order_aligned, page: the keys of constants.FREE_STRATEGIES
FREE_STRATEGIES: Final[tuple[FreeStrategy, ...]] = get_args(FreeStrategy)
_S = TypeVar("_S", bound=str)

__all__ = [
    "VmemmapStrategy", "ScanStrategy", "IsolationStrategy", "FreeStrategy",
    "VMEMMAP_STRATEGIES", "ISOLATION_STRATEGIES", "FREE_STRATEGIES",
    "vmemmap_per_section", "SectionSummary", "nr_vmemmap_per_block",
    "vmemmap_per_section_machine", "check_vmemmap_layout",
    "has_unmovable", "first_not_free", "has_unmovable_machine", "first_not_free_machine",
    "free_range", "ref_vmemmap_per_section", "ref_has_unmovable", "ref_first_not_free",
    "ref_free_range",
]


def _choice(strategy: str, allowed: tuple[_S, ...], what: str) -> _S:
    """``strategy`` as the member of ``allowed`` it names (typed as that member)."""
    if strategy not in allowed:
        raise ValueError(f"{what} strategy {strategy!r} is not one of {', '.join(allowed)}")
    return allowed[allowed.index(strategy)]


# ---------------------------------------------------------------- vmemmap per section

class SectionSummary:
    """A per-section count of vmemmap pages kept beside the planes: the
    ``section_summary`` strategy.  ``note(start, nr)`` is the hook an online
    (``+nr``) or offline (``-nr``) of a block's vmemmap prefix calls.

    >>> s = SectionSummary(4, 64)
    >>> s.note(64, 100)
    >>> s.counts.tolist()
    [0, 64, 36, 0]
    """

    def __init__(self, nr_sections: int, pages_per_section: int) -> None:
        self.pages_per_section = pages_per_section
        self.counts: npt.NDArray[np.int32] = np.zeros(nr_sections, dtype=np.int32)

    @classmethod
    def from_words(cls, vmemmap: npt.NDArray[np.uint64], nr_sections: int,
                   pages_per_section: int) -> SectionSummary:
        """Recount from a vmemmap plane copy that starts at section 0."""
        s = cls(nr_sections, pages_per_section)
        _scan.section_counts(vmemmap, nr_sections, pages_per_section, s.counts)
        return s

    @classmethod
    def from_machine(cls, m: MachineState) -> SectionSummary:
        """Recount every present section of a machine from its vmemmap plane."""
        pps = m.arch.pages_per_section
        s = cls(m.nr_sections, pps)
        present = np.flatnonzero(m.sec_flags)
        if len(present) and pps % 64 == 0:
            # one plane copy per run of present sections
            breaks = np.flatnonzero(np.diff(present) != 1) + 1
            for run in np.split(present, breaks):
                a, b = int(run[0]), int(run[-1]) + 1
                words = m.pages.words(P_VMEMMAP, a * pps, b * pps)
                _scan.section_counts(words, b - a, pps, s.counts[a:b])
        elif len(present):
            for sec in present:
                s.counts[sec] = m.pages.count(P_VMEMMAP, int(sec) * pps, (int(sec) + 1) * pps)
        return s

    def note(self, start_pfn: int, nr_pages: int) -> None:
        """Account ``nr_pages`` (negative: remove) vmemmap pages from start_pfn on."""
        pps, sign, left = self.pages_per_section, (1 if nr_pages >= 0 else -1), abs(nr_pages)
        pfn = start_pfn
        while left:
            sec = pfn // pps
            take = min(left, (sec + 1) * pps - pfn)
            self.counts[sec] += sign * take
            pfn += take
            left -= take


def nr_vmemmap_per_block(m: MachineState) -> npt.NDArray[np.int64]:
    """memory_block->nr_vmemmap_pages of every block whose vmemmap pages are
    marked (online blocks with an altmap), 0 elsewhere: the per-block metadata."""
    return np.where(m.blk_altmap & (m.blk_state == MEM_ONLINE), m.alt_free, 0).astype(np.int64)


def vmemmap_per_section(strategy: VmemmapStrategy, *, nr_sections: int,
                        pages_per_section: int,
                        vmemmap: npt.NDArray[np.uint64] | None = None, first_section: int = 0,
                        summary: npt.NDArray[np.int32] | None = None,
                        nr_vmemmap_pages: npt.NDArray[np.int64] | None = None,
                        sections_per_block: int = 1,
                        out: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.int64]:
    """Vmemmap pages at the start of each of ``nr_sections`` sections.

    ``vmemmap`` is the plane copy starting at the first of those sections
    (per_page, wordwise, prefix); ``summary`` the per-section counts indexed by
    absolute section (section_summary); ``nr_vmemmap_pages`` the per-block counts
    indexed by absolute block (block_metadata).

    >>> w = np.zeros(4, dtype=np.uint64); w[0] = 0xFFFF   # 2 sections of 128 pages
    >>> vmemmap_per_section("prefix", nr_sections=2, pages_per_section=128, vmemmap=w).tolist()
    [16, 0]
    """
    _choice(strategy, VMEMMAP_STRATEGIES, "vmemmap")
    if out is None:
        out = np.empty(nr_sections, dtype=np.int64)
    if strategy in ("per_page", "wordwise", "prefix"):
        if vmemmap is None:
            raise ValueError(f"vmemmap strategy {strategy} needs the vmemmap plane words")
        kernel = {"per_page": _scan.vmemmap_per_page, "wordwise": _scan.vmemmap_wordwise,
                  "prefix": _scan.vmemmap_prefix}[strategy]
        kernel(vmemmap, nr_sections, pages_per_section, out)
    elif strategy == "section_summary":
        if summary is None:
            raise ValueError("vmemmap strategy section_summary needs the summary counts")
        _scan.vmemmap_from_summary(summary, first_section, nr_sections, out)
    else:
        if nr_vmemmap_pages is None:
            raise ValueError("vmemmap strategy block_metadata needs nr_vmemmap_pages per block")
        _scan.vmemmap_from_blocks(nr_vmemmap_pages, first_section, nr_sections,
                                  sections_per_block, pages_per_section, out)
    return out


def vmemmap_per_section_machine(m: MachineState, start_pfn: int, nr_sections: int,
                                strategy: VmemmapStrategy = "block_metadata",
                                summary: SectionSummary | None = None
                                ) -> npt.NDArray[np.int64]:
    """vmemmap_per_section() on a machine's live state (either backend).  The
    plane strategies copy the plane first; section_summary recounts when no
    summary is given."""
    _choice(strategy, VMEMMAP_STRATEGIES, "vmemmap")
    pps = m.arch.pages_per_section
    if start_pfn % pps:
        raise ValueError(f"start pfn {start_pfn:#x} is not section aligned")
    first = start_pfn // pps
    if strategy in ("per_page", "wordwise", "prefix"):
        if isinstance(m.pages, _core.PageState):
            out = np.empty(nr_sections, dtype=np.int64)
            _scan.vmemmap_live(m.pages, strategy, start_pfn, nr_sections, pps, out)
            return out
        words = m.pages.words(P_VMEMMAP, start_pfn, start_pfn + nr_sections * pps)
        return vmemmap_per_section(strategy, nr_sections=nr_sections, pages_per_section=pps,
                                   vmemmap=words)
    if strategy == "section_summary":
        summary = summary if summary is not None else SectionSummary.from_machine(m)
        return vmemmap_per_section(strategy, nr_sections=nr_sections, pages_per_section=pps,
                                   first_section=first, summary=summary.counts)
    return vmemmap_per_section(strategy, nr_sections=nr_sections, pages_per_section=pps,
                               first_section=first, nr_vmemmap_pages=nr_vmemmap_per_block(m),
                               sections_per_block=m.sections_per_block)


def check_vmemmap_layout(m: MachineState) -> None:
    """Raise AssertionError unless the vmemmap plane is exactly the prefix
    [start, start + nr_vmemmap_pages) of every block that has it marked: the
    condition under which all vmemmap strategies agree."""
    nr = nr_vmemmap_per_block(m)
    for blk in np.flatnonzero(m.blk_state):
        s, e = m.block_range(int(blk))
        n = int(nr[blk])
        got = m.pages.count(P_VMEMMAP, s, e)
        assert got == n, f"memory{blk}: {got} vmemmap pages marked, nr_vmemmap_pages {n}"
        if n:
            assert m.pages.find_clear(P_VMEMMAP, s, s + n) < 0, \
                f"memory{blk}: vmemmap pages are not the first {n} pages"


# ---------------------------------------------------------------- isolation checks

def has_unmovable(strategy: ScanStrategy, reserved: npt.NDArray[np.uint64],
                  vmemmap: npt.NDArray[np.uint64], unmovable: npt.NDArray[np.uint64],
                  s: int, e: int, movable_zone: bool,
                  skip_vmemmap: bool) -> int:
    """has_unmovable_pages() on plane copies (pfns relative to word 0): first pfn
    of [s, e) that is reserved (and not a skipped vmemmap page) or, outside
    ZONE_MOVABLE, unmovable; -1 if none.  Strategies: per_page, wordwise."""
    _choice(strategy, ISOLATION_STRATEGIES[:2], "isolation")
    kernel = (_scan.has_unmovable_per_page if strategy == "per_page"
              else _scan.has_unmovable_wordwise)
    return kernel(reserved, vmemmap, unmovable, s, e, movable_zone, skip_vmemmap)


def first_not_free(strategy: ScanStrategy, buddy: npt.NDArray[np.uint64],
                   vmemmap: npt.NDArray[np.uint64], s: int, e: int,
                   skip_vmemmap: bool) -> int:
    """test_pages_isolated() on plane copies: first pfn of [s, e) that is neither
    free nor a skipped vmemmap page; -1 if none.  Strategies: per_page, wordwise."""
    _choice(strategy, ISOLATION_STRATEGIES[:2], "isolation")
    kernel = (_scan.first_not_free_per_page if strategy == "per_page"
              else _scan.first_not_free_wordwise)
    return kernel(buddy, vmemmap, s, e, skip_vmemmap)


def _plane_copies(pages: PageBackend, planes: tuple[int, ...], s: int,
                  e: int) -> tuple[int, list[npt.NDArray[np.uint64]]]:
    base = s & ~63
    end = -(-e // 64) * 64
    return base, [pages.words(p, base, end) for p in planes]


def has_unmovable_machine(pages: PageBackend, s: int, e: int, movable_zone: bool,
                          skip_vmemmap: bool, strategy: IsolationStrategy = "core") -> int:
    """has_unmovable() on a live PageState (or RefPageState); ``core`` asks the
    page state itself, the others run on its live planes (a RefPageState's
    planes are copied first)."""
    _choice(strategy, ISOLATION_STRATEGIES, "isolation")
    if strategy == "core":
        return pages.has_unmovable(s, e, movable_zone, skip_vmemmap)
    if isinstance(pages, _core.PageState):
        return int(_scan.has_unmovable_live(pages, s, e, movable_zone, skip_vmemmap,
                                            strategy == "per_page"))
    base, (r, v, u) = _plane_copies(pages, (P_RESERVED, P_VMEMMAP, P_UNMOVABLE), s, e)
    hit = has_unmovable(strategy, r, v, u, s - base, e - base, movable_zone, skip_vmemmap)
    return hit if hit < 0 else hit + base


def first_not_free_machine(pages: PageBackend, s: int, e: int, skip_vmemmap: bool,
                           strategy: IsolationStrategy = "core") -> int:
    """first_not_free() on a live page state, as has_unmovable_machine()."""
    _choice(strategy, ISOLATION_STRATEGIES, "isolation")
    if strategy == "core":
        return pages.first_not_free(s, e, skip_vmemmap)
    if isinstance(pages, _core.PageState):
        return int(_scan.first_not_free_live(pages, s, e, skip_vmemmap,
                                             strategy == "per_page"))
    base, (b, v) = _plane_copies(pages, (P_BUDDY, P_VMEMMAP), s, e)
    hit = first_not_free(strategy, b, v, s - base, e - base, skip_vmemmap)
    return hit if hit < 0 else hit + base


# ---------------------------------------------------------------- freeing to the buddy

def free_range(pages: PageBackend, s: int, e: int, strategy: FreeStrategy = "ctz",
               misaligned: list[tuple[int, int]] | None = None) -> int:
    """Free pfns [s, e) to the buddy in chunks chosen by ``strategy``; returns the
    pages freed (``PageState.free_range`` / ``RefPageState.free_range``)."""
    _choice(strategy, FREE_STRATEGIES, "free")
    return pages.free_range(s, e, _FREE_STRATEGIES[strategy], misaligned)


# ---------------------------------------------------------------- pure-Python references

def _bits(words: npt.NDArray[np.uint64]) -> list[int]:
    return [int(w) for w in words]


def ref_vmemmap_per_section(vmemmap: npt.NDArray[np.uint64], nr_sections: int,
                            pages_per_section: int) -> npt.NDArray[np.int64]:
    """Page by page in Python: count the vmemmap pages of every section."""
    w = _bits(vmemmap)
    out = np.zeros(nr_sections, dtype=np.int64)
    for sec in range(nr_sections):
        n = 0
        for pfn in range(sec * pages_per_section, (sec + 1) * pages_per_section):
            if (w[pfn >> 6] >> (pfn & 63)) & 1:
                n += 1
        out[sec] = n
    return out


def ref_has_unmovable(reserved: npt.NDArray[np.uint64], vmemmap: npt.NDArray[np.uint64],
                      unmovable: npt.NDArray[np.uint64], s: int, e: int, movable_zone: bool,
                      skip_vmemmap: bool) -> int:
    """Page by page in Python: has_unmovable_pages()."""
    r, v, u = _bits(reserved), _bits(vmemmap), _bits(unmovable)

    def test(w: list[int], pfn: int) -> int:
        return (w[pfn >> 6] >> (pfn & 63)) & 1

    for pfn in range(s, e):
        if test(r, pfn) and not (skip_vmemmap and test(v, pfn)):
            return pfn
        if not movable_zone and test(u, pfn):
            return pfn
    return -1


def ref_first_not_free(buddy: npt.NDArray[np.uint64], vmemmap: npt.NDArray[np.uint64],
                       s: int, e: int,
                       skip_vmemmap: bool) -> int:
    """Page by page in Python: test_pages_isolated()'s first busy pfn."""
    b, v = _bits(buddy), _bits(vmemmap)
    for pfn in range(s, e):
        if (b[pfn >> 6] >> (pfn & 63)) & 1:
            continue
        if skip_vmemmap and (v[pfn >> 6] >> (pfn & 63)) & 1:
            continue
        return pfn
    return -1


def ref_free_range(ref_pages: RefPageState, s: int, e: int,
                   strategy: FreeStrategy = "ctz") -> int:
    """free_range() on the pure-Python RefPageState."""
    return free_range(ref_pages, s, e, strategy)
