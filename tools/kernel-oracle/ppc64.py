"""ppc64el captures: pseries DLPAR memory hot-add of a pc-dimm over QMP.

  qemu-system-ppc64 -machine pseries -cpu power9 (radix MMU) -m 2G,slots=4,maxmem=8G
      console spapr-vty (hvc0), kernel = Debian's vmlinux, SLOF firmware

QEMU places device memory at the first GiB boundary above RAM: 0x80000000,
and a 512 MiB pc-dimm there is two 256 MiB LMBs (memory8, memory9).  The
device_add raises a hotplug event; the kernel's DLPAR code
(arch/powerpc/platforms/pseries/hotplug-memory.c, dlpar_add_lmb) adds each LMB
with __add_memory() (MHP_MEMMAP_ON_MEMORY since 6.6) and onlines it itself
with device_online(), i.e. into the default zone whatever
memhp_default_state says (kept =offline here to show it).  The scenario then
tries online_movable on an online block (EINVAL: the block is not offline),
offlines both blocks and device_del's the DIMM (DLPAR remove of the LMBs).
"""
import capture as C
import harness as H

BOOT_MEMORY = 2 << 30
DIMM_BASE = 0x80000000
DIMM_SIZE = 512 << 20
BLOCK = 256 << 20
BLOCKS = [DIMM_BASE // BLOCK + i for i in range(DIMM_SIZE // BLOCK)]

SCEN_TEXT = {
    "dlpar": "QMP device_add of one 512 MiB pc-dimm at 0x80000000 (two 256 MiB LMBs, "
             "memory8..9; DLPAR adds and onlines them itself), `online_movable` on online "
             "memory8, `offline` memory8 and memory9, QMP device_del (DLPAR remove)",
}


class Capture:
    arch_base = "ppc64"
    driver = "dlpar"
    scenario = "dlpar"
    modules = ("virtio_blk",)
    boot_memory = BOOT_MEMORY

    def __init__(self, pages, era, mom):
        self.pages, self.era, self.mom = pages, era, mom
        self.page_size = 4096 if pages == "4k" else 65536
        self.name = f"ppc64el-{pages}-{era}-mom{mom}-dlpar"
        self.kernel = ("ppc64el" if pages == "4k" else "ppc64el-64k") + f"-{era}"
        self.arch = f"ppc64-radix-{pages}"
        self.range = (DIMM_BASE // self.page_size, (DIMM_BASE + DIMM_SIZE) // self.page_size)
        momv = {"0": "0", "1": "1", "force": "force"}[str(mom)]
        self.cmdline = ("console=hvc0 nokaslr memhp_default_state=offline "
                        f"memory_hotplug.memmap_on_memory={momv} panic=-1")
        self.notes = "pseries DLPAR; the hot-added LMBs are onlined by the kernel itself."
        self.devices_info = []

    def steps(self):
        st = [("00-boot", "boot", "-")]

        def add(tag, op, arg):
            st.append((f"{len(st):02d}-{tag}", op, arg))

        add(f"dlpar-add-memory{BLOCKS[-1]}", "dlpar-add", str(BLOCKS[-1]))
        add(f"online_movable-memory{BLOCKS[0]}", "online_movable", str(BLOCKS[0]))
        for b in BLOCKS:
            add(f"offline-memory{b}", "offline", str(b))
        add(f"dlpar-remove-memory{BLOCKS[-1]}", "dlpar-remove", str(BLOCKS[-1]))
        return st

    def directives(self):
        return [f"step {d} {op} {a}" for d, op, a in self.steps()]

    def qemu_argv(self, k, initrd, img, sock):
        return ["qemu-system-ppc64", "-machine", "pseries", "-accel", "tcg,thread=multi",
                "-cpu", "power9", "-smp", "2", "-m", "2G,slots=4,maxmem=8G",
                "-nodefaults", "-display", "none", "-no-reboot",
                "-chardev", "stdio,id=con", "-device", "spapr-vty,chardev=con",
                "-qmp", f"unix:{sock},server=on,wait=off",
                "-kernel", k["image"], "-initrd", initrd, "-append", self.cmdline,
                "-drive", f"if=none,id=out,file={img},format=raw,cache=unsafe",
                "-device", "virtio-blk-pci,drive=out"]

    def on_hotadd(self, qmp, arg):
        qmp.cmd("object-add", **{"qom-type": "memory-backend-ram", "id": "memhp0",
                                 "size": DIMM_SIZE})
        qmp.cmd("device_add", driver="pc-dimm", id="dimmhp0", memdev="memhp0")
        for d in qmp.cmd("query-memory-devices"):
            v = d["data"]
            self.devices_info.append({"id": v["id"], "driver": "pc-dimm", "addr": v["addr"],
                                      "size": v["size"]})
        C.log(f"{self.name}: QMP hot-added dimmhp0 for {arg}")

    def on_hotremove(self, qmp, arg):
        qmp.cmd("device_del", id="dimmhp0")
        ev = qmp.wait_event("DEVICE_DELETED", 300)
        C.log(f"{self.name}: QMP device_del dimmhp0: "
              f"{'DEVICE_DELETED' if ev else 'no DEVICE_DELETED event'}")
        if ev:
            qmp.cmd("object-del", id="memhp0")

    def toml(self, manifest, step_files):
        out = [*H.toml_head(self.name, "ppc64.py", "pseries, power9 (radix), boot RAM"),
               f"# 0x0-{BOOT_MEMORY - 1:#x}; one {DIMM_SIZE >> 20} MiB pc-dimm hot-added over QMP at "
               f"{DIMM_BASE:#x}: DLPAR adds",
               "# one LMB per memory block and onlines each itself (default zone), whatever",
               "# memhp_default_state (offline here) says.",
               *H.machine_table(self.arch, self.era, f"{BOOT_MEMORY >> 30}G",
                                {"0": "n", "1": "y", "force": "force"}[str(self.mom)])]
        out += H.toml_table("[[device]]", {"name": "dimm0", "driver": "dlpar",
                                           "start": f"{DIMM_BASE:#x}",
                                           "size": f"{DIMM_SIZE >> 20}M", "node": 0})
        for s in manifest["steps"]:
            d = s["dir"]
            if s["op"] == "dlpar-add":
                out += H.toml_table("[[step]]", {"op": "attach", "device": "dimm0", "capture": d},
                                    s["result"])
            elif s["op"] == "dlpar-remove":
                out += H.toml_table("[[step]]", {"op": "detach", "device": "dimm0", "capture": d},
                                    s["result"])
            elif s["op"].startswith("online"):
                out += H.toml_step({"op": "online", "blocks": [s["block"]], "type": s["op"],
                                    "capture": d}, s["result"])
            elif s["op"] == "offline":
                out += H.toml_step({"op": "offline", "blocks": [s["block"]], "capture": d},
                                   s["result"])
        return "\n".join(out) + "\n"


CAPTURES = [Capture(p, e, m) for p, e, m in
            [("4k", "6.12", 1), ("4k", "6.12", 0), ("64k", "6.12", 1), ("64k", "6.12", "force"),
             ("4k", "7.2", 1), ("64k", "7.2", "force")]]
