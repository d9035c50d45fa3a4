"""arm64 captures: dax/kmem hot-add through an emulated NVDIMM.

Debian's arm64 kernels have no ACPI_HOTPLUG_MEMORY, so pc-dimm devices are
never added; memory arrives through drivers/dax/kmem.c instead.  Recipe
(UEFI, because without firmware the virt machine has no acpi-ged device and
the kernel says "memory hotplug is not enabled"):

  qemu-system-aarch64 -machine virt,gic-version=3,nvdimm=on -cpu max,pauth-impdef=on
      -bios QEMU_EFI.fd -m 2G,slots=4,maxmem=8G
      -object memory-backend-ram,id=nv0,size=1G -device nvdimm,id=nvdimm0,memdev=nv0

RAM is 0x40000000-0xbfffffff (memory8..23), the NVDIMM 0xc0000000-0xffffffff
(QEMU's device memory starts at the first GiB above RAM).  No label area, so
region0 has one label-less io namespace (namespace0.0, mode raw).  In the
guest, as `ndctl create-namespace -m devdax -M mem` and `daxctl
reconfigure-device -m system-ram` do through sysfs:

  region0's dax seed dax0.0: mode=ram (memmap in RAM), uuid, namespace=namespace0.0,
  then drivers_probe -> dax_pmem makes /sys/bus/dax/devices/dax0.0, device_dax binds;
  device_dax unbind; dax0.0/memmap_on_memory = 1 (or 0); kmem new_id -> kmem binds and
  add_memory_driver_managed()s the range aligned to memory blocks (the 2 MiB info
  block at the start makes the first block partial: it is dropped, memory25..31 remain).

memhp_default_state=offline keeps the kmem blocks offline; the scenario then
onlines them movable, offlines them and unbinds kmem (remove_memory).
"""
import harness as H

RAM_BASE = 0x40000000
BOOT_MEMORY = 2 << 30
NV_BASE = 0xC0000000
NV_SIZE = 1 << 30
BLOCK = 128 << 20          # SECTION_SIZE_BITS 27 with 4K and with 16K pages
UUID = "6a0b2c1e-1d6e-4c2a-9b53-0d1c3b2f4e5a"
EFI = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"
ND = "/sys/bus/nd/devices"
DAX = "/sys/bus/dax/devices/dax0.0"
# the first block keeps the namespace's info block (dax range starts 2 MiB/32 MiB in)
FIRST = (NV_BASE + BLOCK) // BLOCK
BLOCKS = list(range(FIRST, (NV_BASE + NV_SIZE) // BLOCK))

EXTRA_FILES = [f"{ND}/dax0.0/{a}" for a in ("mode", "align", "uuid", "namespace", "size",
                                             "resource")] + \
    [f"{ND}/namespace0.0/{a}" for a in ("mode", "size", "resource", "holder")] + \
    [f"{DAX}/{a}" for a in ("size", "align", "resource", "memmap_on_memory", "target_node",
                            "numa_node", "mapping0/start", "mapping0/end",
                            "mapping0/page_offset")]
EXTRA_LINKS = [f"{ND}/namespace0.0/driver", f"{ND}/dax0.0/driver", f"{DAX}/driver"]

SCEN_TEXT = {
    "kmem": "1 GiB NVDIMM at 0xc0000000 switched to devdax (dax0.0, mode ram), device_dax "
            "unbound, dax0.0/memmap_on_memory written, bound to kmem (memory25..31, offline); "
            "the attribute written again while kmem is bound; `online_movable` each block, "
            "`offline` each, kmem unbind",
}


class Capture:
    arch_base = "arm64"
    driver = "dax-kmem"
    scenario = "kmem"
    modules = ("virtio_blk", "nfit", "dax_pmem", "device_dax", "kmem")
    boot_memory = BOOT_MEMORY
    devices_info = [{"id": "nvdimm0", "driver": "nvdimm", "addr": NV_BASE, "size": NV_SIZE}]

    def __init__(self, pages, era, mom):
        self.pages, self.era, self.mom = pages, era, mom
        self.page_size = 4096 if pages == "4k" else 16384
        tag = "arm64" if pages == "4k" else "arm64-16k"
        self.name = f"{tag}-{era}-mom{mom}-kmem"
        self.kernel = f"{tag}-{era}"
        self.arch = f"arm64-{pages}"
        self.range = (NV_BASE // self.page_size, (NV_BASE + NV_SIZE) // self.page_size)
        self.cmdline = ("console=ttyAMA0 nokaslr memhp_default_state=offline "
                        "memory_hotplug.memmap_on_memory=1 panic=-1")
        self.notes = ("memmap_on_memory in the name is the dax device's attribute "
                      "(drivers/dax/bus.c memmap_on_memory_store); the global "
                      "memory_hotplug.memmap_on_memory=1 in both.")

    def steps(self):
        """[(dir, op, arg, value)] of the helper scenario."""
        st = [("00-boot", "boot", "-", "")]

        def add(tag, op, arg, value=""):
            st.append((f"{len(st):02d}-{tag}", op, arg, value))

        add("devdax", "write", "/sys/bus/nd/drivers_probe", "dax0.0")
        add("unbind-device_dax", "write", "/sys/bus/dax/drivers/device_dax/unbind", "dax0.0")
        add("memmap_on_memory", "write", f"{DAX}/memmap_on_memory", str(self.mom))
        add("attach-kmem", "write", "/sys/bus/dax/drivers/kmem/new_id", "dax0.0")
        add("memmap_on_memory-bound", "write", f"{DAX}/memmap_on_memory", str(1 - self.mom))
        for b in BLOCKS:
            add(f"online_movable-memory{b}", "online_movable", str(b))
        for b in BLOCKS:
            add(f"offline-memory{b}", "offline", str(b))
        add("detach-kmem", "write", "/sys/bus/dax/drivers/kmem/unbind", "dax0.0")
        return st

    def directives(self):
        d = [f"file {p}" for p in EXTRA_FILES] + [f"link {p}" for p in EXTRA_LINKS]
        # the nd dax seed becomes a devdax personality of namespace0.0 (ndctl's sysfs writes)
        d += [f"do {ND}/dax0.0/mode=ram", f"do {ND}/dax0.0/uuid={UUID}",
              f"do {ND}/dax0.0/namespace=namespace0.0"]
        setup_at = 1
        out = []
        for i, (dr, op, arg, val) in enumerate(self.steps()):
            if i == setup_at:
                out += d[len(EXTRA_FILES) + len(EXTRA_LINKS):]
            out.append(f"step {dr} {op} {arg}={val}" if op == "write" else f"step {dr} {op} {arg}")
        return d[:len(EXTRA_FILES) + len(EXTRA_LINKS)] + out

    def qemu_argv(self, k, initrd, img, sock):
        return ["qemu-system-aarch64", "-machine", "virt,gic-version=3,nvdimm=on",
                "-accel", "tcg,thread=multi", "-cpu", "max,pauth-impdef=on", "-smp", "2",
                "-m", "2G,slots=4,maxmem=8G", "-nodefaults", "-display", "none", "-no-reboot",
                "-serial", "stdio", "-qmp", f"unix:{sock},server=on,wait=off",
                "-bios", EFI, "-kernel", k["image"], "-initrd", initrd, "-append", self.cmdline,
                "-object", f"memory-backend-ram,id=nv0,size={NV_SIZE >> 20}M",
                "-device", "nvdimm,id=nvdimm0,memdev=nv0",
                "-drive", f"if=none,id=out,file={img},format=raw,cache=unsafe",
                "-device", "virtio-blk-pci,drive=out"]

    on_hotadd = on_hotremove = None

    def toml(self, manifest, step_files):
        res = {s["dir"]: s["result"] for s in manifest["steps"]}
        dax_start = int(step_files["01-devdax/sys/bus/dax/devices/dax0.0/resource"], 16) \
            if "01-devdax/sys/bus/dax/devices/dax0.0/resource" in step_files else None
        dax_size = int(step_files["01-devdax/sys/bus/dax/devices/dax0.0/size"]) \
            if "01-devdax/sys/bus/dax/devices/dax0.0/size" in step_files else None
        out = [*H.toml_head(self.name, "arm64.py", "arm64 virt, UEFI/ACPI: boot RAM"),
               f"# {RAM_BASE:#x}-{RAM_BASE + BOOT_MEMORY - 1:#x}; a 1 GiB NVDIMM at {NV_BASE:#x}"
               " switched to devdax (dax0.0)",
               "# and bound to kmem.  Steps 01-02 (devdax, device_dax unbind) do nothing to",
               "# memory and have no op of their own; their outcomes:",
               *[f"#   {d}: {res.get(d)}" for d in ("01-devdax", "02-unbind-device_dax")],
               "# The dax device's memmap_on_memory writes (03 before the bind, 05 while bound)",
               "# are set steps.",
               *(["# offline EPERM: arch/arm64/mm/mmu.c prevent_memory_remove_notifier() refuses",
                  "# (NOTIFY_BAD) an offline range whose vmemmap edge splits a kernel leaf",
                  "# mapping (\"arm64/mm: Reject memory removal that splits a kernel leaf",
                  "# mapping\"); with memmap on memory the range starts 512 pages into the block.",
                  "# kmem unbind then leaves the blocks online (\"stuck online until reboot\")."]
                 if any(s["op"] == "offline" and s["result"] == "EPERM"
                        for s in manifest["steps"]) else []),
               *H.machine_table(self.arch, self.era, f"{BOOT_MEMORY >> 30}G", "y")]
        dev = {"name": "dax0.0", "driver": "dax-kmem"}
        if dax_start is not None:
            dev["start"] = f"{dax_start:#x}"
            dev["size"] = f"{dax_size:#x}"
        dev["node"] = 0
        out += H.toml_table("[[device]]", dev)
        for s in manifest["steps"]:
            d = s["dir"]
            if d.endswith("memmap_on_memory") or d.endswith("memmap_on_memory-bound"):
                value = bool(self.mom) if d.endswith("memmap_on_memory") else not self.mom
                out += H.toml_step({"op": "set", "device": "dax0.0", "key": "memmap_on_memory",
                                    "value": value, "capture": d}, s["result"])
            elif d.endswith("attach-kmem"):
                out += H.toml_table("[[step]]", {"op": "attach", "device": "dax0.0", "capture": d},
                                    s["result"])
            elif d.endswith("detach-kmem"):
                out += H.toml_table("[[step]]", {"op": "detach", "device": "dax0.0", "capture": d},
                                    s["result"])
            elif s["op"] in ("online", "online_movable", "online_kernel", "offline"):
                kv = {"op": "online", "blocks": [s["block"]], "type": s["op"]} \
                    if s["op"] != "offline" else {"op": "offline", "blocks": [s["block"]]}
                out += H.toml_step({**kv, "capture": d}, s["result"])
        return "\n".join(out) + "\n"


CAPTURES = [Capture(p, e, m) for p, e, m in
            [("4k", "6.12", 1), ("4k", "6.12", 0), ("4k", "7.3", 1), ("4k", "7.3", 0),
             ("16k", "6.12", 1), ("16k", "7.3", 1)]]
