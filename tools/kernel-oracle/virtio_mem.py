#!/usr/bin/env python3
"""Kernel-oracle captures of driver-managed hot-add: virtio-mem (x86_64).

A 4 GiB virtio-mem-pci device (2 MiB device blocks) is cold-plugged with
requested-size 1G; the guest boots without the virtio_mem module, loads it
(attach: the driver plugs 1 GiB and the kernel auto-onlines it), then the host
resizes the device through QMP (qom-set vm0 requested-size) to 2G, 2G+6M, 506M,
512M and 0.
After every step, once the device's plugged size has settled (QMP qom-get vm0
size) and the guest's memory blocks and MemTotal have stopped changing, the
guest captures the same views as capture.py plus /sys/bus/virtio/devices/*/
and /sys/module/virtio_mem/parameters/.

Driven by capture.py (`capture.py --all`, `capture.py 6.12-virtio-mem-movable`);
`python3 virtio_mem.py --summary NAME...` prints the facts of a capture.
See README.md next to this file.
"""
import json
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture as C  # noqa: E402  (the shared harness: QMP, Cpio, modules, helper)
import guest as G  # noqa: E402
import harness as H  # noqa: E402
from guest import size_str  # noqa: E402

ERAS = ("6.1", "6.12", "7.3")
ONLINE = {"movable": "online_movable", "online": "online"}

DEV_BASE = 0x100000000          # memaddr of the device: start of device memory (2 GiB boot RAM)
DEV_SIZE = 4 << 30              # the device region (memory-backend-ram size)
DEV_BLOCK = 2 << 20             # virtio-mem block-size
INITIAL = 1 << 30               # requested-size at boot
# up and down in whole memory blocks (2G, 512M), then by 3 subblocks across a
# block boundary (2G+6M: memory48 partly plugged; 506M: memory35 partly
# unplugged, its unplugged subblocks PageOffline), back to 512M, then 0
RESIZES = (2 << 30, (2 << 30) + (6 << 20), 506 << 20, 512 << 20, 0)
SETTLE_STALL = 75               # s without plugged-size progress = settled short of the target
                                # (virtio-mem retries a failed unplug after 50 s: one retry is seen)

SCEN_TEXT = {
    "virtio-mem-movable":
        "4 GiB virtio-mem-pci (block-size 2M, requested-size 1G) at 0x100000000, "
        "memhp_default_state=online_movable, memmap_on_memory=1: boot without virtio_mem, "
        "insmod virtio_mem (attach, 1 GiB), QMP requested-size 2G, 2G+6M, 506M, 512M, 0",
    "virtio-mem-online":
        "same device, memhp_default_state=online (kernel zone): attach 1 GiB, "
        "requested-size 2G, 2G+6M, 506M, 512M, 0 (`short`: the plugged size stayed above the "
        "request for 75 s, the driver could not unplug everything)",
}


def all_names():
    return [f"{era}-{s}" for s in SCEN_TEXT for era in ERAS]


def owns(name):
    return re.fullmatch(r"(6\.1|6\.12|7\.3)-virtio-mem-(movable|online)", name) is not None


def parse_name(name):
    m = re.fullmatch(r"(6\.1|6\.12|7\.3)-virtio-mem-(movable|online)", name)
    if not m:
        raise SystemExit(f"bad capture name {name!r}; see --list")
    return m.group(1), m.group(2)


# --------------------------------------------------------------------------
# the scenario


def steps():
    """[(dir, op, arg, size or None)]: the helper's steps and the requested size."""
    out = [("00-boot", "boot", "-", None),
           ("01-attach", "insmod", "/lib/modules/virtio_mem.ko", INITIAL)]
    for sz in RESIZES:
        out.append((f"{len(out):02d}-resize-{size_str(sz)}", "host", f"resize:{sz}", sz))
    return out


def kernel_cmdline(scen):
    return ("console=ttyS0 nokaslr "
            f"memhp_default_state={ONLINE[scen]} memory_hotplug.memmap_on_memory=1 panic=-1")


def device_state(qmp):
    """virtio-mem vm0 as QMP sees it: query-memory-devices' entry."""
    for d in qmp.cmd("query-memory-devices"):
        if d.get("type") == "virtio-mem" and d["data"].get("id") == "vm0":
            return d["data"]
    return None


def resize(qmp, size, name):
    """qom-set requested-size, then wait until qom-get size == size or it stops
    moving for SETTLE_STALL s.  Returns (result, detail, [(t, size)])."""
    t0 = time.time()
    qmp.cmd("qom-set", path="vm0", property="requested-size", value=size)
    last, last_t, trace = None, t0, []
    while True:
        cur = qmp.cmd("qom-get", path="vm0", property="size")
        if cur != last:
            last, last_t = cur, time.time()
            trace.append((round(last_t - t0, 2), cur))
        if cur == size:
            return "ok", f"plugged-size={cur} after {last_t - t0:.1f}s", trace
        if time.time() - last_t > SETTLE_STALL:
            C.log(f"{name}: plugged size stuck at {cur} (requested {size})")
            return ("short", f"plugged-size={cur} requested-size={size}: "
                    f"unchanged for {SETTLE_STALL}s", trace)
        time.sleep(0.25)


def run_capture(name, keep_work=False):
    era, scen = parse_name(name)
    k = G.fetch_kernel(era)
    st = steps()
    rs, re_ = DEV_BASE // C.PAGE, (DEV_BASE + DEV_SIZE) // C.PAGE
    scen_txt = (f"# {name}\nrange {rs:#x} {re_:#x}\n"
                "capture-dir /sys/bus/virtio/devices/*\n"
                "capture-dir /sys/module/virtio_mem/parameters\n"
                + "".join(f"step {d} {op} {arg}\n" for d, op, arg, _ in st))
    devices, traces = {}, {}     # step dir -> vm0 after the step; -> plugged size while resizing

    def on_step(qmp, d):
        devices[d] = device_state(qmp)
        return f"plugged {devices[d]['size']}"

    def on_host(qmp, arg):
        cmd, _, val = arg.partition(":")
        if cmd != "resize":
            return "EINVAL", f"unknown host command {arg}"
        d = next(s[0] for s in st if s[1] == "host" and s[2] == arg)
        res, detail, traces[d] = resize(qmp, int(val), name)
        return res, detail

    cmdline = kernel_cmdline(scen)
    shown, members, console = G.run_guest(
        name, k, cmdline=cmdline, scenario_text=scen_txt, nsteps=len(st), range_pfns=(rs, re_),
        qemu_extra=["-object", f"memory-backend-ram,id=vmem0,size={size_str(DEV_SIZE)}",
                    "-device", f"virtio-mem-pci,id=vm0,memdev=vmem0,block-size={size_str(DEV_BLOCK)},"
                               f"requested-size={size_str(INITIAL)},memaddr={DEV_BASE:#x}"],
        targets=("virtio_pci", "virtio_blk", "virtio_mem"), deferred=("virtio_mem",),
        on_host=on_host, on_step=on_step, keep_work=keep_work)
    return assemble(name, era, scen, k, shown, cmdline, members, console, devices, traces)


def assemble(name, era, scen, k, qemu_args, cmdline, members, console, devices, traces):
    rs, re_ = DEV_BASE // C.PAGE, (DEV_BASE + DEV_SIZE) // C.PAGE
    files = dict(members)
    reqs = {d: sz for d, _, _, sz in steps()}
    results = G.results(files)
    for r in results:
        dev = devices.get(r["dir"]) or {}
        r.update({"requested_size": reqs.get(r["dir"]), "plugged_size": dev.get("size"),
                  "device": dev, "plugged_size_trace": traces.get(r["dir"])})
    H.check_steps(name, results, [s[0] for s in steps()])
    bsb = int(files["steps/00-boot/sys/devices/system/memory/block_size_bytes"], 16)
    manifest = {
        "name": name,
        "scenario": f"virtio-mem-{scen}",
        "kernel_package": " ".join(k["packages"]),
        "kernel_release": files["uname-r"].decode().strip(),
        "era": era,
        "qemu_cmdline": qemu_args,
        "qemu_version": H.qemu_version(),
        "kernel_cmdline": cmdline,
        "guest_proc_cmdline": files.get("proc-cmdline", b"").decode().strip(),
        "boot_memory_bytes": C.BOOT_MEMORY,
        "memmap_on_memory": 1,
        "auto_online": ONLINE[scen],
        "block_size_bytes": bsb,
        "range_start_pfn": rs,
        "range_end_pfn": re_,
        "device": {"id": "vm0", "driver": "virtio-mem-pci", "memdev": "vmem0",
                   "addr": DEV_BASE, "size": DEV_SIZE, "block_size": DEV_BLOCK,
                   "requested_size_at_boot": INITIAL, "qemu_start": devices.get("qemu-start")},
        "steps": results,
        "notes": ("kpageflags/kpagecount: raw little-endian u64 per pfn of the device region "
                  "[range_start_pfn, range_end_pfn); a shorter file means EOF (pfns beyond "
                  "max_pfn: before virtio_mem added any memory). Each step is captured after "
                  "QMP qom-get vm0 size reached the requested size (or stopped moving for "
                  f"{SETTLE_STALL}s: result 'short') and the guest's memory blocks and MemTotal "
                  "were unchanged for 3 s. steps[].device is QMP query-memory-devices' vm0 "
                  "after the step; plugged_size_trace is [seconds, size] while resizing. "
                  "elapsed_ns are TCG-emulated timings."),
    }
    H.write_tarball(name, manifest, members, console)
    write_toml(manifest)
    return manifest


# --------------------------------------------------------------------------
# hotmem scenario (issue 11's device contract)


def scenario_toml(m):
    era, scen = parse_name(m["name"])
    out = [*H.toml_head(m["name"], "virtio_mem.py", "The device is cold-plugged"),
           "# (requested-size 1G); the guest boots without the virtio_mem module and loads it",
           "# in 01-attach; the resizes are QMP qom-set vm0 requested-size.  Each step is",
           "# captured once QMP's plugged size and the guest's memory blocks have settled."]
    if scen == "online":
        out += ["# Normal zone: the kernel's own allocations (slab, per-cpu lists, the guest's",
                "# /proc reads) land in the device's memory at pfns that vary from run to run;",
                "# the subblocks holding them are what the driver cannot unplug (result",
                "# 'short': plugged size stays above the request).  A stand-in alloc step",
                "# before that resize pins as many subblocks (see there); hotmem compares the",
                "# MAX_ORDER chunks holding either side's kernel pages by residual."]
    out += H.machine_table("x86_64", era, "2G", "y", ONLINE[scen], tails={
        "memmap_on_memory": "          # virtio-mem never asks for it (no MHP_MEMMAP_ON_MEMORY)"})
    out += H.toml_table("[[device]]", {
        "name": "vm0", "driver": "virtio-mem", "start": f"{DEV_BASE:#x}",
        "size": size_str(DEV_SIZE), "node": 0, "block_size": size_str(DEV_BLOCK),
        "requested_size": size_str(INITIAL)},
        tails={"requested_size": "     # at attach (QEMU requested-size)"})
    for r in m["steps"]:
        if r["op"] == "boot":
            continue
        kv = {"op": "attach", "device": "vm0"} if r["op"] == "insmod" else \
            {"op": "resize", "device": "vm0",
             "size": size_str(r["requested_size"]) if r["requested_size"] else "0"}
        kv["capture"] = r["dir"]
        if scen == "online" and r["result"] == "short":
            out += pin_stand_in(r)
        out += H.toml_table("[[step]]", kv, f"{r['result']}, plugged size {r['plugged_size']}")
    return "\n".join(out) + "\n"


def pin_stand_in(r):
    """The stand-in for the kernel's own pages that kept ``r``'s resize short:
    unmovable pages that pin as many subblocks as the kernel kept plugged.
    __rmqueue_fallback() claims the lowest free MAX_ORDER block of the device's
    Movable pageblocks and the allocation fills it from its first pfn, so
    (pinned - 1) subblocks plus one page reach ``pinned`` subblocks."""
    sb_pages = DEV_BLOCK // C.PAGE
    pinned = r["plugged_size"] // DEV_BLOCK
    pages = (pinned - 1) * sb_pages + 1
    note = ["# The kernel's own pages (slab and the like, a few dozen at pfns that vary",
            f"# from run to run) kept {pinned} subblocks of the device plugged at {r['dir']}.",
            f"# hotmem does not model background kernel allocations: {pages} unmovable",
            f"# pages, placed as __rmqueue_fallback() places them, pin {pinned} subblocks."]
    return H.toml_table("[[step]]", {"op": "alloc", "zone": "Normal", "kind": "unmovable",
                                     "pages": pages, "placement": "kernel"}, note=note)


def write_toml(m):
    H.write_toml(m["name"], scenario_toml(m))


def rewrite_tomls(names):
    for name in names:
        write_toml(json.loads(H.load(name)["manifest.json"]))


# --------------------------------------------------------------------------
# facts of a capture (for reports and for whoever implements the driver)

def subblock_map(vals, rs, block, bpages, sb_pages):
    """'1' per plugged subblock of memoryN: no PageOffline page in it"""
    lo = block * bpages - rs
    bv = vals[lo:lo + bpages]
    return "".join("0" if any(v >> 23 & 1 for v in bv[i:i + sb_pages]) else "1"
                   for i in range(0, len(bv), sb_pages))


def summarize(name):
    """The facts a simulator must reproduce, per step."""
    files = H.load(name)
    m = json.loads(files["manifest.json"])
    rs, re_ = m["range_start_pfn"], m["range_end_pfn"]
    bsb = m["block_size_bytes"]
    bpages = bsb // C.PAGE
    first, last = rs * C.PAGE // bsb, re_ * C.PAGE // bsb
    print(f"== {name}: {m['kernel_release']}; {m['kernel_cmdline']}")
    params = {x.rsplit("/", 1)[1]: files[x].decode().strip() for x in files
              if x.startswith("steps/00-boot/sys/module/memory_hotplug/parameters/")}
    print("   memory_hotplug parameters:", params)
    dm = G.new_dmesg(files, [r["dir"] for r in m["steps"]])
    prev_blocks = {}
    for r in m["steps"]:
        d, p = r["dir"], f"steps/{r['dir']}/"
        print(f"-- {d}: {r['result']}; requested-size {r['requested_size']} "
              f"plugged size {r['plugged_size']}; {r['detail']}")
        blocks = {b: v for b, v in G.memory_blocks(files, d).items() if first <= b < last}
        added = sorted(set(blocks) - set(prev_blocks))
        removed = sorted(set(prev_blocks) - set(blocks))
        prev_blocks = blocks
        states = {}
        for b, (st, vz) in blocks.items():
            states.setdefault(f"{st}/{vz}", []).append(b)
        print("   device blocks:", "; ".join(
            f"{k_}: memory{v[0]}..{v[-1]} ({len(v)})" for k_, v in states.items()) or "none",
            f"| added {added} removed {removed}" if added or removed else "")
        vals = [v for (v,) in struct.iter_unpack("<Q", files.get(p + "kpageflags", b""))]
        G.print_kpageflags(vals, rs, (0x400, 0x100000), 12)
        for b in blocks:
            sbm = subblock_map(vals, rs, b, bpages, DEV_BLOCK // C.PAGE)
            if "0" in sbm:
                print(f"   memory{b} subblocks (1 = plugged, {len(sbm)}): {sbm}")
        G.print_zones(files, p, rs, re_)
        G.print_dmesg(dm[d], r"virtio_mem|hotplug|offlin|onlin|zonelists|memmap|Movable|"
                      r"System RAM|unmovable|failed|WARN|BUG",
                      r"BIOS-e820|SRAT|ACPI:|Command line|HugeTLB", 25)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--summary":
        for n in sys.argv[2:]:
            summarize(n)
    else:
        sys.exit("usage: virtio_mem.py --summary NAME...  (captures are run by capture.py)")
