"""Write a machine's procfs / sysfs views to a directory tree, as they would read.

The tree is written whole into a fresh temporary folder beside DIR and then
renamed into place (hotmem.safeio): an existing non-empty DIR is refused
unless ``force``, and no symlink in or at DIR is ever followed.
"""
from __future__ import annotations

from pathlib import Path

from ..safeio import DirWriter
from ..state import MachineState
from . import nodes, procfs, sysfs
from .kpageflags import write_kpageflags
from .machine_files import machine_files


def write_views(m: MachineState, w: DirWriter, prefix: str = "") -> None:
    """PREFIX/proc/{buddyinfo,zoneinfo,pagetypeinfo,kpageflags,meminfo,vmstat,
    iomem}, PREFIX/sys/devices/system/{memory,node}/..., the memoryN/nodeM
    links and PREFIX/sys/module/memory_hotplug/parameters inside the folder
    being written."""
    w.write_text(f"{prefix}proc/buddyinfo", procfs.buddyinfo(m))
    w.write_text(f"{prefix}proc/zoneinfo", procfs.zoneinfo(m))
    w.write_text(f"{prefix}proc/pagetypeinfo", procfs.pagetypeinfo(m))
    with w.open(f"{prefix}proc/kpageflags") as fh:
        write_kpageflags(m, fh)
    for rel, text in sysfs.memory_tree(m).items():
        w.write_text(f"{prefix}sys/devices/system/memory/{rel}", text)
    for rel, text in machine_files(m).items():
        if isinstance(text, nodes.Symlink):
            w.symlink(f"{prefix}{rel}", str(text))
        else:
            w.write_text(f"{prefix}{rel}", text)


def export(m: MachineState, root: str | Path, force: bool = False) -> Path:
    """Write the views of ``m`` as the folder ``root``; returns it."""
    with DirWriter(root, force=force) as w:
        write_views(m, w)
    return Path(root)
