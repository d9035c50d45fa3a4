#!/usr/bin/env python3
"""hotmem kernel oracle: boot real Debian kernels under QEMU (TCG) with
hot-pluggable DIMMs, run a memory-hotplug scenario inside the guest and
capture the kernel's views after every step.

    python3 tools/kernel-oracle/capture.py --all          # every capture
    python3 tools/kernel-oracle/capture.py 6.1-mom1-movable 6.12-mom0-qmp
    python3 tools/kernel-oracle/capture.py --list

Python 3 standard library only.  Needs (Debian): qemu-system-x86,
busybox-static, gcc + libc6-dev (static helper), apt (to fetch the kernels;
7.3 from trixie-backports through a private apt configuration).
See README.md next to this file.
"""
import argparse
import concurrent.futures
import io
import json
import lzma
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tarfile
import time

import harness as H

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(HERE, ".cache")
OUT = os.path.join(REPO, "tests", "data", "oracle")

# Exact Debian packages per era.  6.1 and 6.12 come from the machine's own
# Debian 12 suites (bookworm / bookworm-security / bookworm-backports).  From 7.x
# Debian splits the kernel: linux-image-* is empty, the image is in
# linux-binary-*, the modules in linux-modules-*, config and modules.builtin in
# linux-base-* (all under usr/lib/modules/RELEASE/); every package listed is
# extracted into one tree.
KERNEL_PACKAGES = {
    "6.1": ("linux-image-6.1.0-56-amd64-unsigned",),
    "6.12": ("linux-image-6.12.117+deb12-amd64-unsigned",),
    "7.3": ("linux-binary-7.3.4+deb13-amd64", "linux-modules-7.3.4+deb13-amd64",
            "linux-base-7.3.4+deb13-amd64"),
}
# Eras whose packages are in a suite the machine's sources do not list: fetched
# through a private apt configuration under .cache/apt (its own sources.list,
# lists and archive cache), which leaves the system's sources alone.
APT_SUITES = {
    "7.3": "trixie-backports",
}
APT_MIRROR = "http://deb.debian.org/debian"
APT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

BOOT_MEMORY = 2 << 30
DIMM_SIZE = 128 << 20
NR_DIMMS = 8
DIMM_BASE = 0x100000000        # QEMU places DIMMs at 4 GiB with 2 GiB of boot RAM
PAGE = 4096
BLOCK_PAGES = DIMM_SIZE // PAGE
FIRST_BLOCK = DIMM_BASE // DIMM_SIZE   # memory32

QEMU = "qemu-system-x86_64"
CAPTURE_TIMEOUT = 1800         # seconds, whole QEMU run
HOTPLUG_TIMEOUT = 300          # seconds, inside the guest

SCENARIOS = ("movable", "default", "qmp")
ERAS = ("6.1", "6.12", "7.3")


def log(*a):
    print("[oracle]", *a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# scenarios


def scenario_steps(scen):
    """[(dir, op, block|None)] for a scenario."""
    steps = [("00-boot", "boot", None)]
    blocks = [FIRST_BLOCK + i for i in range(NR_DIMMS)]
    if scen in ("movable", "default"):
        on = "online_movable" if scen == "movable" else "online"
        for b in blocks:
            steps.append((f"{len(steps):02d}-{on}-memory{b}", on, b))
        for b in blocks:
            steps.append((f"{len(steps):02d}-offline-memory{b}", "offline", b))
    elif scen == "qmp":
        b = FIRST_BLOCK
        for op in ("hot-add", "online_movable", "offline", "hot-remove"):
            steps.append((f"{len(steps):02d}-{op}-memory{b}", op, b))
    else:
        raise ValueError(scen)
    return steps


def scenario_range(scen):
    start = DIMM_BASE // PAGE
    n = NR_DIMMS if scen in ("movable", "default") else 1
    return start, start + n * BLOCK_PAGES


def cold_dimms(scen):
    return NR_DIMMS if scen in ("movable", "default") else 0


def foreign_captures():
    """{name: Capture} of the non-x86 captures (arm64.py, ppc64.py)."""
    import arm64
    import ppc64
    return {c.name: c for c in arm64.CAPTURES + ppc64.CAPTURES}


def all_names():
    return ([f"{era}-mom{m}-{s}" for s in SCENARIOS for era in ERAS for m in (0, 1)]
            + [n for d in drivers() for n in d.all_names()]
            + list(foreign_captures()))


def drivers():
    """Driver-managed hot-add captures, one module each (virtio_mem.py,
    dax_kmem.py); imported late, they import this file."""
    import dax_kmem
    import virtio_mem
    for d in (virtio_mem, dax_kmem):
        SCEN_TEXT.update(d.SCEN_TEXT)
    return (virtio_mem, dax_kmem)


def driver_of(name):
    return next((d for d in drivers() if d.owns(name)), None)


def parse_name(name):
    m = re.fullmatch(r"(6\.1|6\.12|7\.3)-mom([01])-(movable|default|qmp)", name)
    if not m:
        raise SystemExit(f"bad capture name {name!r}; see --list")
    return m.group(1), int(m.group(2)), m.group(3)


# --------------------------------------------------------------------------
# kernels


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def private_apt(d, sources, *extra):
    """apt-get -o options of a configuration in ``d`` that sees only
    ``sources`` (sources.list text) and nothing of the system's sources.list /
    sources.list.d, with its own lists, archive cache and an empty dpkg status."""
    for sub in ("lists/partial", "archives/partial"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    src = os.path.join(d, "sources.list")
    if not os.path.exists(src) or open(src).read() != sources:
        with open(src, "w") as f:
            f.write(sources)
    status = os.path.join(d, "status")
    if not os.path.exists(status):
        open(status, "w").close()
    return ["-o", f"Dir::Etc::SourceList={src}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={os.path.join(d, 'lists')}",
            "-o", f"Dir::Cache={d}", "-o", f"Dir::Cache::Archives={os.path.join(d, 'archives')}",
            "-o", f"Dir::State::status={status}",
            # the _apt user cannot write into this tree: download as the caller
            "-o", "APT::Sandbox::User=root", *extra]


def apt_options(suite):
    """private_apt() options that see only ``suite`` of the Debian archive."""
    return private_apt(os.path.join(CACHE, "apt", suite),
                       f"deb [signed-by={APT_KEYRING}] {APT_MIRROR} {suite} main\n")


def _debs_of(debs, pkg):
    return sorted(f for f in os.listdir(debs) if f.startswith(pkg + "_") and f.endswith(".deb"))


def fetch_kernel(era):
    """Download + extract the era's kernel .debs; returns dict with paths/versions."""
    pkgs = KERNEL_PACKAGES[era]
    debs = os.path.join(CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    missing = [p for p in pkgs if not _debs_of(debs, p)]
    if missing:
        opts = []
        if era in APT_SUITES:
            opts = apt_options(APT_SUITES[era])
            log(f"apt-get update ({APT_SUITES[era]}, private configuration)")
            run(["apt-get", *opts, "update"], cwd=debs)
        log(f"apt-get download {' '.join(missing)}")
        run(["apt-get", *opts, "download", *missing], cwd=debs)
    files = [os.path.join(debs, _debs_of(debs, p)[-1]) for p in pkgs]
    version = subprocess.run(["dpkg-deb", "-f", files[0], "Version"], check=True,
                             capture_output=True, text=True).stdout.strip()
    x = os.path.join(CACHE, "x", os.path.basename(files[0])[:-4])
    done = os.path.join(x, ".extracted")
    if not os.path.exists(done):
        shutil.rmtree(x, ignore_errors=True)
        os.makedirs(x)
        for deb in files:
            log(f"dpkg -x {os.path.basename(deb)}")
            run(["dpkg", "-x", deb, x])
        open(done, "w").close()
    boot = os.path.join(x, "boot")
    if os.path.isdir(boot):             # 6.x: boot/vmlinuz-REL, lib/modules/REL
        vmlinuz = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")][0]
        release = vmlinuz[len("vmlinuz-"):]
        vmlinuz = os.path.join(boot, vmlinuz)
        moddir = os.path.join(x, "lib", "modules", release)
    else:                               # 7.x: usr/lib/modules/REL/{vmlinuz,config,...}
        mods = os.path.join(x, "usr", "lib", "modules")
        release = os.listdir(mods)[0]
        moddir = os.path.join(mods, release)
        vmlinuz = os.path.join(moddir, "vmlinuz")
    return {"package": pkgs[0], "version": version, "deb": files[0], "root": x,
            "vmlinuz": vmlinuz, "release": release, "moddir": moddir}


def _modinfo_depends(data):
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def needed_modules(k, targets=("virtio_pci", "virtio_blk")):
    """[(name, bytes)] in load order for the out disk (virtio-blk-pci)."""
    moddir = k["moddir"]
    builtin = set()
    with open(os.path.join(moddir, "modules.builtin")) as f:
        for line in f:
            builtin.add(os.path.basename(line.strip()).split(".ko")[0].replace("-", "_"))
    paths = {}
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for fn in files:
            if ".ko" in fn:
                paths[fn.split(".ko")[0].replace("-", "_")] = os.path.join(root, fn)
    order, seen = [], set()

    def visit(name):
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        seen.add(name)
        p = paths[name]
        with open(p, "rb") as f:
            data = f.read()
        if p.endswith(".xz"):
            data = lzma.decompress(data)
        for d in _modinfo_depends(data):
            visit(d)
        order.append((name, data))

    for t in targets:
        visit(t)
    return order


def build_helper():
    src = os.path.join(HERE, "oracle-helper.c")
    out = os.path.join(CACHE, "oracle-helper")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(CACHE, exist_ok=True)
        log("gcc -static oracle-helper.c")
        run(["gcc", "-O2", "-static", "-Wall", "-o", out + ".tmp", src])
        os.replace(out + ".tmp", out)
    return out


# --------------------------------------------------------------------------
# initramfs (newc cpio written by hand: no external cpio needed)


class Cpio:
    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08X}" for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(name_b), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self.buf.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name):
        self._entry(name, stat.S_IFDIR | 0o755, nlink=2)

    def file(self, name, data, mode=0o644):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor):
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        data = self.buf.getvalue()
        return data + b"\0" * ((512 - len(data) % 512) % 512)


def build_initramfs(k, helper, scenario_text, path, targets=("virtio_pci", "virtio_blk"),
                    deferred=()):
    """/init loads ``targets`` and their dependencies, except the modules in
    ``deferred`` (left in /lib/modules for the helper's insmod step)."""
    H.build_initramfs(path, shutil.which("busybox") or "/bin/busybox", helper,
                      needed_modules(k, targets), scenario_text, deferred)


# --------------------------------------------------------------------------
# QMP


class QMP:
    def __init__(self, path, timeout=60):
        t0 = time.time()
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() - t0 > timeout:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise EOFError("QMP closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error']}")
            return r.get("return")

    def wait_event(self, name, timeout):
        self.s.settimeout(timeout)
        try:
            while True:
                for i, e in enumerate(self.events):
                    if e["event"] == name:
                        return self.events.pop(i)
                self.events.append(self._read())
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.s.settimeout(None)

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# one capture

def kernel_cmdline(mom):
    return ("console=ttyS0 nokaslr memhp_default_state=offline "
            f"memory_hotplug.memmap_on_memory={mom} panic=-1")


def qemu_argv(k, cmdline, initrd, img, sock, machine="pc"):
    """The x86_64 guest: 2 GiB of boot RAM, room for 12 DIMMs, the output disk."""
    return [QEMU, "-machine", machine, "-accel", "tcg,thread=multi", "-cpu", "max",
            "-smp", "2", "-m", "2G,slots=12,maxmem=64G",
            "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", "stdio", "-qmp", f"unix:{sock},server=on,wait=off",
            "-kernel", k["vmlinuz"], "-initrd", initrd, "-append", cmdline,
            "-drive", f"if=none,id=out,file={img},format=raw,cache=unsafe",
            "-device", "virtio-blk-pci,drive=out"]


def run_capture(name, keep_work=False):
    era, mom, scen = parse_name(name)
    k = fetch_kernel(era)
    helper = build_helper()
    steps = scenario_steps(scen)
    scen_txt = "# {}\nrange {:#x} {:#x}\n".format(name, *scenario_range(scen)) + "".join(
        f"step {d} {op} {'-' if b is None else b}\n" for d, op, b in steps)
    cmdline = kernel_cmdline(mom)

    def argv(initrd, img, sock):
        args = qemu_argv(k, cmdline, initrd, img, sock)
        for i in range(cold_dimms(scen)):
            args += ["-object", f"memory-backend-ram,id=mem{i},size=128M",
                     "-device", f"pc-dimm,id=dimm{i},memdev=mem{i}"]
        return args

    dimms = []
    hot = []            # ids of the QMP hot-added DIMMs

    def on_start(qmp):
        for d in qmp.cmd("query-memory-devices"):
            v = d["data"]
            dimms.append({"id": v["id"], "addr": v["addr"], "size": v["size"]})

    def hotadd(qmp, arg):
        n = len([d for d in dimms if d["id"].startswith("dimmhp")])
        hot.append(f"dimmhp{n}")
        qmp.cmd("object-add", **{"qom-type": "memory-backend-ram",
                                 "id": f"memhp{n}", "size": DIMM_SIZE})
        qmp.cmd("device_add", driver="pc-dimm", id=hot[-1], memdev=f"memhp{n}")
        for d in qmp.cmd("query-memory-devices"):
            v = d["data"]
            if v["id"] == hot[-1]:
                dimms.append({"id": v["id"], "addr": v["addr"], "size": v["size"]})
        log(f"{name}: QMP hot-added {hot[-1]}")

    def hotremove(qmp, arg):
        qmp.cmd("device_del", id=hot[-1])
        ev = qmp.wait_event("DEVICE_DELETED", 300)
        log(f"{name}: QMP device_del {hot[-1]}: "
            f"{'DEVICE_DELETED' if ev else 'no DEVICE_DELETED event'}")
        if ev:
            qmp.cmd("object-del", id=hot[-1].replace("dimm", "mem"))

    shown, members, console = H.boot(
        name, f"{k['package']} ({k['version']})", k["vmlinuz"],
        initramfs=lambda path: build_initramfs(k, helper, scen_txt, path), argv=argv,
        range_pfns=scenario_range(scen), nsteps=len(steps),
        hooks={"HOTADD": hotadd, "HOTREMOVE": hotremove}, on_start=on_start,
        keep_work=keep_work)
    return assemble(name, era, mom, scen, k, shown, cmdline, dimms, members, console)


def assemble(name, era, mom, scen, k, qemu_args, cmdline, dimms, members, console):
    rs, re_ = scenario_range(scen)
    files = dict(members)
    release = files["uname-r"].decode().strip()
    results = H.read_results(files["results.txt"].decode())
    H.check_steps(name, results, [s[0] for s in scenario_steps(scen)])
    bsb = int(files["steps/00-boot/sys/devices/system/memory/block_size_bytes"], 16)
    manifest = {
        "name": name,
        "scenario": scen,
        "kernel_package": f"{k['package']}={k['version']}",
        "kernel_release": release,
        "era": era,
        "qemu_cmdline": qemu_args,
        "qemu_version": H.qemu_version(),
        "kernel_cmdline": cmdline,
        "guest_proc_cmdline": files.get("proc-cmdline", b"").decode().strip(),
        "boot_memory_bytes": BOOT_MEMORY,
        "memmap_on_memory": mom,
        "block_size_bytes": bsb,
        "range_start_pfn": rs,
        "range_end_pfn": re_,
        "dimms": dimms,
        "steps": results,
        "notes": ("kpageflags/kpagecount: raw little-endian u64 per pfn of "
                  "[range_start_pfn, range_end_pfn) exactly as read; a shorter file "
                  "means the kernel returned EOF (pfns beyond max_pfn, e.g. before a "
                  "QMP hot-add). elapsed_ns are TCG-emulated timings. dmesg is the raw "
                  "syslog buffer (<level>[time] msg). console.log is the serial console."),
    }
    H.write_tarball(name, manifest, members, console)
    write_toml(name, era, mom, scen, results, H.step_files(members))
    return manifest


# --------------------------------------------------------------------------
# simulator scenario + MANIFEST.md


KPF_BUDDY = 1 << 10
KPF_NOPAGE = 1 << 20
# self-hosted memmap pages: PG_reserved|PG_owner_priv_1 (6.1), PG_owner_priv_1 (6.12, 7.3)
KPF_VMEMMAP = (1 << 32 | 1 << 37, 1 << 37)


def kernel_held_pfns(kpageflags, start_pfn, block):
    """pfns of hot-added block ``block`` (memoryN, online) that the kernel had
    allocated: pages that are neither free (buddy) nor the block's own memmap
    (a page without flags, 0x0, is allocated here: the block is online)."""
    lo = block * BLOCK_PAGES - start_pfn
    vals = [v for (v,) in struct.iter_unpack("<Q", kpageflags[lo * 8:(lo + BLOCK_PAGES) * 8])]
    return [start_pfn + lo + i for i, v in enumerate(vals)
            if not v & (KPF_BUDDY | KPF_NOPAGE) and v not in KPF_VMEMMAP]


def stand_in_allocation(scen, step_files):
    """The kernel allocations a ``default`` capture shows in memory32 after the
    last online step, as (pages, first pfn, last pfn); None if there are none."""
    if scen != "default":
        return None
    steps = scenario_steps(scen)
    last_online = [d for d, op, _ in steps if op == "online"][-1]
    rs, _ = scenario_range(scen)
    held = kernel_held_pfns(step_files[f"{last_online}/kpageflags"], rs, FIRST_BLOCK)
    return (len(held), held[0], held[-1], last_online) if held else None


def write_toml(name, era, mom, scen, results, step_files):
    """<name>.toml from the capture's results and step files ({"NN-op/file": bytes})."""
    H.write_toml(name, scenario_toml(name, era, mom, scen,
                                     {r["dir"]: r["result"] for r in results},
                                     stand_in_allocation(scen, step_files)))


def rewrite_tomls(names):
    """Regenerate the .toml of existing captures (no QEMU)."""
    for name in names:
        era, mom, scen = parse_name(name)
        files = H.load(name)
        write_toml(name, era, mom, scen, json.loads(files["manifest.json"])["steps"],
                   H.step_files(files))


def scenario_toml(name, era, mom, scen, results=None, stand_in=None):
    """results: {step dir: kernel outcome}, written as a comment on each step.
    stand_in: (pages, first pfn, last pfn, step dir) of the kernel's own
    allocations in memory32 (``default`` captures), replayed as an alloc step."""
    results = results or {}
    out = [*H.toml_head(name, "capture.py", "Cold-plugged DIMMs are ACPI-added"),
           "# at boot with memhp_default_state=offline, hence the add steps mapped to 00-boot.",
           *H.machine_table("x86_64", era, "2G", "y" if mom else "n")]

    def step(comment=(), **kv):
        out.extend(H.toml_table("[[step]]", kv, results.get(kv.get("capture")), comment))

    for i in range(cold_dimms(scen)):
        step(op="add", size="128M", start=f"{DIMM_BASE + i * DIMM_SIZE:#x}", capture="00-boot")
    steps = scenario_steps(scen)
    last_online = max((i for i, (_, op, _) in enumerate(steps) if op.startswith("online")),
                      default=None)
    for i, (d, op, b) in enumerate(steps):
        if i == 0:
            continue
        if op in ("online", "online_movable", "online_kernel"):
            step(op="online", blocks=[b], type=op, capture=d)
            if i == last_online and stand_in:
                pages, first, last, seen = stand_in
                note = ["# The kernel's own allocations.  Once memory32 is online in Normal (a kernel",
                        "# zone), GFP_KERNEL allocations land there: slab pages, the seq_file buffers",
                        "# of the guest's own /proc reads, ...  hotmem does not model background kernel",
                        "# allocations, so this step says what the guest did: after the last online",
                        f"# step ({seen}) the capture's kpageflags show {pages} pages of memory32 held",
                        f"# by the kernel (pfns {first:#x}-{last:#x}; the exact pfns and count vary",
                        "# from run to run).  They are what makes the offline of memory32 fail with",
                        "# EBUSY (has_unmovable_pages: \"unmovable page\").  No capture key: the",
                        "# capture has no step of its own for them.  placement = \"kernel\" takes them",
                        "# as __rmqueue_fallback() does: the largest free Movable block, claimed."]
                step(note, op="alloc", zone="Normal", kind="unmovable", pages=pages,
                     placement="kernel")
        elif op == "offline":
            step(op="offline", blocks=[b], capture=d)
        elif op == "hot-add":
            step(op="add", size="128M", start=f"{b * DIMM_SIZE:#x}", capture=d)
        elif op == "hot-remove":
            step(op="remove", start=f"{b * DIMM_SIZE:#x}", size="128M", capture=d)
    return "\n".join(out) + "\n"


SCEN_TEXT = {
    "movable": "8 cold-plugged 128 MiB DIMMs (memory32..39, offline at boot); "
               "`online_movable` each in order, then `offline` each in order",
    "default": "8 cold-plugged 128 MiB DIMMs (memory32..39, offline at boot); "
               "`online` (default zone, contig-zones) each in order, then `offline` each in order",
    "qmp": "no cold-plugged DIMM; QMP hot-add of one 128 MiB pc-dimm (memory32), "
           "`online_movable`, `offline`, QMP `device_del` (ACPI eject)",
}


def write_manifest_md():
    rows = []
    for fn in sorted(os.listdir(OUT)):
        if not fn.endswith(".tar.xz"):
            continue
        name = fn[:-len(".tar.xz")]
        with tarfile.open(os.path.join(OUT, fn)) as t:
            m = json.load(t.extractfile(f"{name}/manifest.json"))
        rows.append(m)
    order = {n: i for i, n in enumerate(all_names())}
    rows.sort(key=lambda m: order.get(m["name"], 99))
    import arm64
    import ppc64
    scen_text = {**SCEN_TEXT, **arm64.SCEN_TEXT, **ppc64.SCEN_TEXT}
    out = ["# Kernel oracle captures", "",
           "Generated by `python3 tools/kernel-oracle/capture.py --all` "
           "(see tools/kernel-oracle/README.md). Each `<name>.tar.xz` holds "
           "`<name>/manifest.json`, `<name>/steps/NN-<op>[-memoryN]/...` and "
           "`<name>/console.log`; `<name>.toml` is the same scenario in the simulator's format.",
           "",
           "Common: QEMU `-machine pc -accel tcg,thread=multi -cpu max -smp 2 "
           "-m 2G,slots=12,maxmem=64G`, 128 MiB memory blocks, DIMMs from 0x100000000 "
           "(pfn 0x100000, memory32).  virtio-mem and dax-kmem captures: see virtio_mem.py / "
           "dax_kmem.py; arm64-* and ppc64el-* captures: arm64.py / ppc64.py; each "
           "manifest's `qemu_cmdline` is the exact command.", "",
           "| capture | kernel package | uname -r | scenario | steps (result) |",
           "|---|---|---|---|---|"]
    for m in rows:
        st = "; ".join(f"{s['dir']}: {s['result']}" for s in m["steps"])
        out.append(f"| `{m['name']}` | `{m['kernel_package']}` | `{m['kernel_release']}` | "
                   f"{scen_text.get(m.get('scenario', ''), '')} | {st} |")
    out.append("")
    out.append("Kernel command lines:")
    out.append("")
    for m in rows:
        out.append(f"- `{m['name']}`: `{m['kernel_cmdline']}`")
    out.append("")
    out.append("Non-`ok` outcomes are real kernel results (the guest writes each sysfs "
               "file once and records errno), not harness failures.")
    with open(os.path.join(OUT, "MANIFEST.md"), "w") as f:
        f.write("\n".join(out) + "\n")


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="capture names (see --list)")
    ap.add_argument("--all", action="store_true", help="run every capture")
    ap.add_argument("--list", action="store_true", help="list capture names")
    ap.add_argument("--jobs", type=int, default=1,
                    help="QEMU guests run in parallel (default 1; each uses 2 vCPU threads)")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dir (debug)")
    ap.add_argument("--toml-only", action="store_true",
                    help="only regenerate <name>.toml from the existing <name>.tar.xz, "
                         "and MANIFEST.md from all tarballs (no QEMU)")
    a = ap.parse_args()
    if a.list:
        print("\n".join(all_names()))
        return 0
    names = all_names() if a.all else a.names
    if not names:
        ap.error("give capture names or --all")
    foreign = foreign_captures()
    ours = {n: driver_of(n) for n in names if n not in foreign and driver_of(n)}
    for n in names:
        if n not in ours and n not in foreign:
            parse_name(n)
    dimm = [n for n in names if n not in ours and n not in foreign]
    if a.toml_only:
        rewrite_tomls(dimm)
        for n, d in ours.items():
            d.rewrite_tomls([n])
        import foreign as F
        for n in names:
            if n in foreign:
                F.rewrite_toml(foreign[n])
        write_manifest_md()
        return 0
    for era in sorted({parse_name(n)[0] for n in dimm}):
        fetch_kernel(era)
    import guest
    for era in sorted({d.parse_name(n)[0] for n, d in ours.items()}):
        guest.fetch_kernel(era)
    if dimm or ours:
        build_helper()
    t0 = time.time()
    failed = []

    def one(n):
        if n in foreign:
            import foreign as F
            return F.run_capture(foreign[n], a.keep_work)
        if n in ours:
            return ours[n].run_capture(n, a.keep_work)
        return run_capture(n, a.keep_work)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = {ex.submit(one, n): n for n in names}
        for fu in concurrent.futures.as_completed(futs):
            try:
                fu.result()
            except Exception as e:  # keep going with the other captures
                log(f"FAILED {futs[fu]}: {e}")
                failed.append(futs[fu])
    write_manifest_md()
    log(f"done in {time.time() - t0:.0f}s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
