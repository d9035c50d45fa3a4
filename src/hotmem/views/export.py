"""Write a machine's procfs / sysfs views to a directory tree, as they would read."""
from __future__ import annotations

import shutil
from pathlib import Path
from ..state import MachineState
from . import procfs, sysfs
from .kpageflags import write_kpageflags
from .machine_files import write_machine_files


def export(m: MachineState, root: str | Path) -> Path:
    """Write DIR/proc/{buddyinfo,zoneinfo,pagetypeinfo,kpageflags,meminfo,vmstat,
    iomem}, DIR/sys/devices/system/{memory,node}/... and
    DIR/sys/module/memory_hotplug/parameters; returns DIR."""
    root = Path(root)
    proc = root / "proc"
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "buddyinfo").write_text(procfs.buddyinfo(m))
    (proc / "zoneinfo").write_text(procfs.zoneinfo(m))
    (proc / "pagetypeinfo").write_text(procfs.pagetypeinfo(m))
    with open(proc / "kpageflags", "wb") as fh:
        write_kpageflags(m, fh)
    mem = root / "sys" / "devices" / "system" / "memory"
    if mem.exists():
        shutil.rmtree(mem)  # blocks removed since an earlier export must not linger
    for rel, text in sysfs.memory_tree(m).items():
        path = mem / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    # meminfo, vmstat, iomem, /sys/devices/system/node, memoryN/nodeM links,
    # memory_hotplug parameters (views/machine_files.py)
    write_machine_files(m, root)
    return root
