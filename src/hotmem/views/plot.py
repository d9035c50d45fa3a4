"""Pictures of a machine (optional: pip install 'hotmem[plot]').

``memory_map`` classifies physical memory into what each pixel mostly holds,
from the page planes, without one Python object per page; ``plot_machine``
draws it with the free blocks per order of every zone.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..constants import (
    P_BUDDY,
    P_RESERVED,
    P_UNMOVABLE,
    P_VMEMMAP,
    SECTION_IS_ONLINE,
    SECTION_MARKED_PRESENT,
)
from ..state import MachineState

# categories, in the order they are drawn in the legend
CATEGORIES = ("absent", "offline", "free", "movable", "unmovable", "reserved", "vmemmap")
COLOURS = ("#ffffff", "#c8c8c8", "#4caf50", "#2196f3", "#e53935", "#424242", "#ff9800")
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _popcount_per_pixel(words: npt.NDArray[np.uint64],
                        words_per_pixel: int) -> npt.NDArray[np.int64]:
    counts = _POPCOUNT8[words.view(np.uint8)].reshape(-1, 8 * words_per_pixel)
    total: npt.NDArray[np.int64] = counts.sum(axis=1, dtype=np.int64)
    return total


def memory_map(m: MachineState,
               pixels: int = 1 << 16) -> tuple[npt.NDArray[np.int8], int]:
    """(category index per pixel, pfns per pixel) for pfns [0, max_pfn)."""
    end = m.max_pfn()
    per = max(64, -(-end // pixels))
    per = -(-per // 64) * 64
    n = -(-end // per)
    stop = n * per
    if stop > m.nr_pfns:
        stop = m.nr_pfns // per * per
        n = stop // per
    wpp = per // 64
    count = {name: _popcount_per_pixel(m.pages.words(plane, 0, stop), wpp)
             for name, plane in (("free", P_BUDDY), ("reserved", P_RESERVED),
                                 ("unmovable", P_UNMOVABLE), ("vmemmap", P_VMEMMAP))}
    sec_shift = m.arch.section_size_bits - m.arch.page_shift
    first = (np.arange(n, dtype=np.int64) * per) >> sec_shift
    flags = m.sec_flags[np.minimum(first, len(m.sec_flags) - 1)]
    online = (flags & SECTION_IS_ONLINE) != 0
    present = (flags & SECTION_MARKED_PRESENT) != 0
    # PageVmemmap pages of the RFC are PG_reserved too: count them once
    count["reserved"] = np.maximum(count["reserved"] - count["vmemmap"], 0)
    count["movable"] = np.maximum(per - count["free"] - count["reserved"] - count["unmovable"]
                                  - count["vmemmap"], 0)
    # a pixel shows what constrains it most: an unmovable page anywhere in it
    # is what makes offlining fail, a single allocated page what breaks up
    # max-order blocks
    cat = np.full(n, CATEGORIES.index("free"), dtype=np.int64)
    for name in ("movable", "reserved", "unmovable"):
        cat = np.where(count[name] > 0, CATEGORIES.index(name), cat)
    cat = np.where(2 * count["vmemmap"] >= per, CATEGORIES.index("vmemmap"), cat)
    if m.design.memmap_stays_marked_offline:
        # PageVmemmap pages stay marked while their block is offline
        cat = np.where(~online & (count["vmemmap"] > 0), CATEGORIES.index("vmemmap"), cat)
        cat = np.where(~online & (count["vmemmap"] == 0) & present, 1, cat)
    else:
        cat = np.where(~online & present, 1, cat)
    cat = np.where(~present, 0, cat)
    return cat.astype(np.int8), per


def plot_machine(m: MachineState, path: str, title: str | None = None) -> None:
    """Write a PNG: the memory map, and free blocks per order of each zone."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from matplotlib.patches import Patch
    except ImportError:
        from ..errors import ConfigError
        raise ConfigError("plots need matplotlib: pip install 'hotmem[plot]'") from None
    cat, per = memory_map(m)
    width = 512
    rows = -(-len(cat) // width)
    grid = np.zeros(rows * width, dtype=np.int8)
    grid[:len(cat)] = cat
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 9), height_ratios=(3, 1))
    ax1.imshow(grid.reshape(rows, width), cmap=ListedColormap(COLOURS), vmin=0,
               vmax=len(COLOURS) - 1, interpolation="nearest", aspect="auto")
    ax1.set_title(title or f"{m.arch.name}, kernel {m.kernel} ({m.design}): "
                  f"{per << m.arch.page_shift >> 10} KiB per pixel, {width} pixels per row; "
                  "a pixel shows its most constraining page")
    ax1.set_xticks([])
    ax1.set_ylabel(f"row ({width * per << m.arch.page_shift >> 20} MiB)")
    ax1.legend(handles=[Patch(color=c, label=n) for n, c in zip(CATEGORIES, COLOURS, strict=True)],
               loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=len(CATEGORIES))
    orders = np.arange(m.arch.max_page_order + 1)
    zones = [z for z in m.zones if z.present_pages]
    w = 0.8 / max(len(zones), 1)
    for i, z in enumerate(zones):
        ax2.bar(orders + i * w, m.pages.nr_free[z.zid].sum(axis=0), width=w,
                label=f"node {z.nid} {z.name}")
    ax2.set_yscale("symlog")
    ax2.set_xlabel("order")
    ax2.set_ylabel("free blocks")
    ax2.set_xticks(orders)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
