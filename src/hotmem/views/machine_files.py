"""The rest of a machine's memory files beside buddyinfo/zoneinfo/pagetypeinfo,
kpageflags and the memory blocks: /proc/{meminfo,vmstat,iomem},
/sys/devices/system/node, the memoryN/nodeM links and
/sys/module/memory_hotplug/parameters."""
from __future__ import annotations

from ..state import MachineState
from . import iomem, meminfo, nodes, vmstat

NODE_DIR = "sys/devices/system/node"
MEMORY_DIR = "sys/devices/system/memory"
PARAM_DIR = "sys/module/memory_hotplug/parameters"
# /proc/sys/kernel/arch (utsname()->machine) of each hotmem arch family
UNAME_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64", "ppc64": "ppc64le",
                 "s390x": "s390x", "riscv64": "riscv64"}


def machine_files(m: MachineState) -> dict[str, str]:
    """Path under the export root -> contents (nodes.Symlink for a link)."""
    files = {"proc/meminfo": meminfo.meminfo(m), "proc/vmstat": vmstat.vmstat(m),
             "proc/iomem": iomem.iomem(m)}
    files.update({f"{NODE_DIR}/{p}": t for p, t in nodes.node_tree(m).items()})
    files.update({f"{MEMORY_DIR}/{p}": t for p, t in nodes.block_node_links(m).items()})
    files.update({f"{PARAM_DIR}/{p}": t for p, t in nodes.module_parameters(m).items()})
    files.update({f"{MEMORY_DIR}/{p}": t for p, t in nodes.firmware_nodes(m).items()})
    # what a snapshot of this export needs to rebuild the machine, in the
    # kernel's own files: release, uname machine, min_free_kbytes, THP
    files["proc/sys/kernel/osrelease"] = f"{m.kernel}.0-hotmem\n"
    files["proc/sys/kernel/arch"] = UNAME_MACHINE[m.arch.name.split("-")[0]] + "\n"
    files["proc/sys/vm/min_free_kbytes"] = f"{m.min_free_kbytes}\n"
    files["sys/kernel/mm/transparent_hugepage/enabled"] = \
        "always [madvise] never\n" if m.thp else "always madvise [never]\n"
    return files
