#!/usr/bin/env python3
"""Kernel-oracle captures of dax/kmem on x86_64 through an emulated NVDIMM.

QEMU `-machine pc,nvdimm=on` with one label-less 512 MiB `nvdimm` at
0x100000000: the guest sees region0 with a raw namespace0.0 (nd_pmem, /dev/pmem0).
Without ndctl, the helper turns it into a device-dax instance with the same
sysfs writes `ndctl create-namespace -m devdax -M mem` makes (namespace0.0
unbound from nd_pmem; the region's dax0.0 seed given a uuid, mode "ram" (the
struct pages of device-dax live in RAM, not on the device), the namespace,
then bound to dax_pmem), unbinds dax0.0 from device_dax, writes its
`memmap_on_memory` attribute (1 or 0), binds it to kmem through new_id
(attach: the blocks come up offline), onlines every block online_movable,
offlines them, and unbinds it from kmem (detach: the memory is removed).
Every write is one captured step.

Driven by capture.py; `python3 dax_kmem.py --summary NAME...` prints the facts.
"""
import json
import os
import re
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture as C  # noqa: E402
import guest as G  # noqa: E402
import harness as H  # noqa: E402

ERAS = ("6.12", "7.3")        # the dax device's memmap_on_memory attribute is 6.8+
NV_BASE = 0x100000000
NV_SIZE = 512 << 20
UUID = "6b0ad3b8-6a0b-4f0e-9a64-3c1c0c6d0a01"
ND = "/sys/bus/nd"
DAX = "/sys/bus/dax"
# the devdax data starts at ALIGN(8K info block + 128K dax label reserve, 2M) in
# mode "ram" (drivers/nvdimm/pfn_devs.c nd_pfn_init); kmem then rounds the range
# in to memory blocks (drivers/dax/kmem.c dax_kmem_range): memory33..35
BLOCKS = (33, 34, 35)

SCEN_TEXT = {
    "dax-kmem-mom1":
        "512 MiB label-less NVDIMM at 0x100000000 (-machine pc,nvdimm=on), namespace0.0 "
        "switched to devdax (mode ram), dax0.0 memmap_on_memory=1, bound to kmem "
        "(blocks offline: memhp_default_state=offline), online_movable each block, offline "
        "each, unbind from kmem",
    "dax-kmem-mom0": "same with dax0.0 memmap_on_memory=0",
}
NAME_RE = r"(6\.12|7\.3)-dax-kmem-mom([01])"


def all_names():
    return [f"{era}-dax-kmem-mom{m}" for m in (1, 0) for era in ERAS]


def owns(name):
    return re.fullmatch(NAME_RE, name) is not None


def parse_name(name):
    m = re.fullmatch(NAME_RE, name)
    if not m:
        raise SystemExit(f"bad capture name {name!r}; see --list")
    return m.group(1), int(m.group(2))


def steps(mom):
    """[(dir, op, arg)] for the helper"""
    w = [("ns-unbind", f"{ND}/drivers/nd_pmem/unbind=namespace0.0"),
         ("dax-uuid", f"{ND}/devices/dax0.0/uuid={UUID}"),
         ("dax-mode-ram", f"{ND}/devices/dax0.0/mode=ram"),
         ("dax-namespace", f"{ND}/devices/dax0.0/namespace=namespace0.0"),
         ("dax-pmem-bind", f"{ND}/drivers/dax_pmem/bind=dax0.0"),
         ("device-dax-unbind", f"{DAX}/drivers/device_dax/unbind=dax0.0"),
         (f"memmap_on_memory-{mom}", f"{DAX}/devices/dax0.0/memmap_on_memory={mom}"),
         ("attach", f"{DAX}/drivers/kmem/new_id=dax0.0")]
    out = [("00-boot", "boot", "-")]
    for d, a in w:
        out.append((f"{len(out):02d}-{d}", "write", a))
    for op in ("online_movable", "offline"):
        for b in BLOCKS:
            out.append((f"{len(out):02d}-{op}-memory{b}", op, str(b)))
    out.append((f"{len(out):02d}-detach", "write", f"{DAX}/drivers/kmem/unbind=dax0.0"))
    return out


def kernel_cmdline():
    return ("console=ttyS0 nokaslr memhp_default_state=offline "
            "memory_hotplug.memmap_on_memory=1 panic=-1")


def run_capture(name, keep_work=False):
    era, mom = parse_name(name)
    k = G.fetch_kernel(era)
    st = steps(mom)
    rs, re_ = NV_BASE // C.PAGE, (NV_BASE + NV_SIZE) // C.PAGE
    scen_txt = (f"# {name}\nrange {rs:#x} {re_:#x}\n"
                f"capture-dir {DAX}/devices/*\n"
                f"capture-dir {ND}/devices/*\n"
                + "".join(f"step {d} {op} {arg}\n" for d, op, arg in st))
    cmdline = kernel_cmdline()
    shown, members, console = G.run_guest(
        name, k, cmdline=cmdline, scenario_text=scen_txt, nsteps=len(st), range_pfns=(rs, re_),
        machine="pc,nvdimm=on",
        qemu_extra=["-object", f"memory-backend-ram,id=nv0,size={G.size_str(NV_SIZE)}",
                    "-device", f"nvdimm,id=nvdimm0,memdev=nv0,addr={NV_BASE:#x}"],
        targets=("virtio_pci", "virtio_blk", "nfit", "nd_pmem", "dax_pmem", "device_dax", "kmem"),
        keep_work=keep_work)
    files = dict(members)
    results = G.results(files)
    H.check_steps(name, results, [s[0] for s in st])
    manifest = {
        "name": name,
        "scenario": f"dax-kmem-mom{mom}",
        "kernel_package": " ".join(k["packages"]),
        "kernel_release": files["uname-r"].decode().strip(),
        "era": era,
        "qemu_cmdline": shown,
        "qemu_version": H.qemu_version(),
        "kernel_cmdline": cmdline,
        "guest_proc_cmdline": files.get("proc-cmdline", b"").decode().strip(),
        "boot_memory_bytes": C.BOOT_MEMORY,
        "memmap_on_memory": 1,
        "dax_memmap_on_memory": mom,
        "block_size_bytes": int(files["steps/00-boot/sys/devices/system/memory/block_size_bytes"], 16),
        "range_start_pfn": rs,
        "range_end_pfn": re_,
        "nvdimm": {"id": "nvdimm0", "addr": NV_BASE, "size": NV_SIZE, "label_size": 0},
        "steps": results,
        "notes": ("kpageflags/kpagecount: raw little-endian u64 per pfn of the NVDIMM "
                  "[range_start_pfn, range_end_pfn). Each sysfs write is one step, done once; "
                  "its capture follows once the memory blocks and MemTotal were unchanged for "
                  "3 s. sys/bus/dax/devices/* and sys/bus/nd/devices/* hold the regular files "
                  "of each device directory (links: its symlinks). elapsed_ns are TCG timings."),
    }
    H.write_tarball(name, manifest, members, console)
    write_toml(manifest, files)
    return manifest


def dax_range(files, step):
    """(start, size) of dax0.0 on the dax bus at ``step`` (its resource/size files)"""
    p = f"steps/{step}/sys/bus/dax/devices/dax0.0/"
    try:
        return int(files[p + "resource"].decode(), 16), int(files[p + "size"].decode())
    except (KeyError, ValueError):
        return None


def scenario_toml(m, files):
    era, mom = parse_name(m["name"])
    attach = next(r["dir"] for r in m["steps"] if r["dir"].endswith("-attach"))
    rng = dax_range(files, attach)
    out = [*H.toml_head(m["name"], "dax_kmem.py", "The device is dax0.0 made from a"),
           f"# {G.size_str(NV_SIZE)} label-less NVDIMM at {NV_BASE:#x} (namespace0.0 -> devdax, "
           "mode ram); its",
           "# range is what the dax device's resource/size files say.  The setup writes",
           "# before attach (" + ", ".join(r["dir"] for r in m["steps"][1:]
                                          if r["dir"] < attach) + ")",
           "# have captures but no hotmem op.",
           *H.machine_table("x86_64", era, "2G", "y")]
    dev = {"name": "dax0.0", "driver": "dax-kmem"}
    if rng:
        dev.update(start=f"{rng[0]:#x}", size=G.size_str(rng[1]))
    out += H.toml_table("[[device]]", {**dev, "node": 0, "memmap_on_memory": bool(mom)})
    for r in m["steps"]:
        d = r["dir"]
        if d.endswith("-attach") or d.endswith("-detach"):
            kv = {"op": d.rsplit("-", 1)[1], "device": "dax0.0"}
        elif r["op"] == "offline":
            kv = {"op": "offline", "blocks": [int(r["arg"])]}
        elif r["op"] == "online_movable":
            kv = {"op": "online", "blocks": [int(r["arg"])], "type": r["op"]}
        else:
            continue
        out += H.toml_table("[[step]]", {**kv, "capture": d}, r["result"])
    return "\n".join(out) + "\n"


def write_toml(m, files):
    H.write_toml(m["name"], scenario_toml(m, files))


def rewrite_tomls(names):
    for name in names:
        files = H.load(name)
        write_toml(json.loads(files["manifest.json"]), files)


def summarize(name):
    files = H.load(name)
    m = json.loads(files["manifest.json"])
    rs, re_ = m["range_start_pfn"], m["range_end_pfn"]
    bsb = m["block_size_bytes"]
    first, last = rs * C.PAGE // bsb, re_ * C.PAGE // bsb
    print(f"== {name}: {m['kernel_release']}; {m['kernel_cmdline']}")
    dm = G.new_dmesg(files, [r["dir"] for r in m["steps"]])
    for r in m["steps"]:
        d, p = r["dir"], f"steps/{r['dir']}/"
        print(f"-- {d}: {r['result']}; {r['detail']}")
        dd = f"{p}sys/bus/dax/devices/dax0.0/"
        attrs = {a: files[dd + a].decode().strip() for a in
                 ("memmap_on_memory", "size", "resource", "align", "target_node")
                 if dd + a in files}
        links = files.get(dd + "links", b"").decode().split("\n")
        drv = [x.split("/")[-1] for x in links if x.startswith("driver ->")]
        if attrs:
            print(f"   dax0.0 on the dax bus: driver={drv[0] if drv else None}", attrs)
        blocks = {b: v for b, v in G.memory_blocks(files, d).items() if first <= b < last}
        print("   blocks:", ", ".join(f"memory{b}:{s}/{z}" for b, (s, z) in blocks.items())
              or "none")
        vals = [v for (v,) in struct.iter_unpack("<Q", files.get(p + "kpageflags", b""))]
        G.print_kpageflags(vals, rs, (0x400,), 8, uniform=False)
        G.print_zones(files, p, rs, re_)
        G.print_dmesg(dm[d], r"dax|kmem|nd_pmem|pmem|nvdimm|hotplug|offlin|onlin|memmap|Movable|"
                      r"truncat|failed|WARN|BUG", r"BIOS-e820|SRAT|Command line", 20)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--summary":
        for n in sys.argv[2:]:
            summarize(n)
    else:
        sys.exit("usage: dax_kmem.py --summary NAME...  (captures are run by capture.py)")
