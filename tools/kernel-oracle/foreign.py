"""Shared machinery of the non-x86 kernel-oracle captures (arm64.py, ppc64.py).

Kernels, busybox and nothing else come from Debian's archive through a
private apt configuration under .cache/apt (its own sources.list, lists,
cache and an empty dpkg status): the system's sources are left alone.  The
static helper is cross-built with gcc-<triplet>.  Everything else (initramfs,
QMP, the helper's output disk) is capture.py's.

An arch module registers Capture objects with:
    name, arch (hotmem arch), debarch, kernel (KERNELS key), qemu argv builder,
    scenario (list of directives for oracle-helper), range (pfns), toml writer.
"""
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time

import capture as C

APT_DIR = os.path.join(C.CACHE, "apt")
SOURCES = """\
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
"""
DEBARCHES = ("arm64", "ppc64el")

# key -> (debarch, [packages]); 7.x kernels are split into binary/modules/base.
KERNELS = {
    "arm64-6.12": ("arm64", ["linux-image-6.12.117+deb12-arm64-unsigned"]),
    "arm64-16k-6.12": ("arm64", ["linux-image-6.12.117+deb12-arm64-16k-unsigned"]),
    "arm64-7.3": ("arm64", ["linux-binary-7.3.4+deb13-arm64", "linux-modules-7.3.4+deb13-arm64",
                            "linux-base-7.3.4+deb13-arm64"]),
    "arm64-16k-7.3": ("arm64", ["linux-binary-7.3.4+deb13-arm64-16k",
                                "linux-modules-7.3.4+deb13-arm64-16k",
                                "linux-base-7.3.4+deb13-arm64-16k"]),
    "ppc64el-6.12": ("ppc64el", ["linux-image-6.12.117+deb12-powerpc64le"]),
    "ppc64el-64k-6.12": ("ppc64el", ["linux-image-6.12.117+deb12-powerpc64le-64k"]),
    # 7.3.4 ppc64el is listed in trixie-backports but its .debs were not downloadable
    # here (404); 7.2.11 is the newest that was.
    "ppc64el-7.2": ("ppc64el", ["linux-binary-7.2.11+deb13-powerpc64le",
                                "linux-modules-7.2.11+deb13-powerpc64le",
                                "linux-base-7.2.11+deb13-powerpc64le"]),
    "ppc64el-64k-7.2": ("ppc64el", ["linux-binary-7.2.11+deb13-powerpc64le-64k",
                                    "linux-modules-7.2.11+deb13-powerpc64le-64k",
                                    "linux-base-7.2.11+deb13-powerpc64le-64k"]),
}
CROSS_GCC = {"arm64": "aarch64-linux-gnu-gcc", "ppc64el": "powerpc64le-linux-gnu-gcc"}


def apt(*args, cwd=None):
    """apt-get with the private configuration (never the system's sources)."""
    os.makedirs(os.path.join(APT_DIR, "lists", "partial"), exist_ok=True)
    os.makedirs(os.path.join(APT_DIR, "cache", "archives", "partial"), exist_ok=True)
    src = os.path.join(APT_DIR, "sources.list")
    if not os.path.exists(src) or open(src).read() != SOURCES:
        with open(src, "w") as f:
            f.write(SOURCES)
    status = os.path.join(APT_DIR, "status")
    if not os.path.exists(status):
        open(status, "w").close()
    opts = ["-o", f"Dir::Etc::SourceList={src}", "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={APT_DIR}/lists", "-o", f"Dir::Cache={APT_DIR}/cache",
            "-o", f"Dir::State::status={status}", "-o", "APT::Architecture=arm64",
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]
    for a in DEBARCHES:
        opts += ["-o", f"APT::Architectures::={a}"]
    C.run(["apt-get", "-q"] + opts + list(args), cwd=cwd)


def download(pkg, debarch):
    debs = os.path.join(C.CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    pat = re.compile(re.escape(pkg) + r"_[^_]+_" + debarch + r"\.deb$")
    found = [f for f in os.listdir(debs) if pat.match(f)]
    if not found:
        lists = os.path.join(APT_DIR, "lists")
        if not os.path.isdir(lists) or not any("_Packages" in f for f in os.listdir(lists)):
            C.log("apt-get update (private apt configuration in .cache/apt)")
            apt("update")
        C.log(f"apt-get download {pkg}:{debarch}")
        apt("download", f"{pkg}:{debarch}", cwd=debs)
        found = [f for f in os.listdir(debs) if pat.match(f)]
    return os.path.join(debs, sorted(found)[-1])


def fetch_kernel(key):
    debarch, pkgs = KERNELS[key]
    debs = [download(p, debarch) for p in pkgs]
    versions = [subprocess.run(["dpkg-deb", "-f", d, "Version"], check=True, capture_output=True,
                               text=True).stdout.strip() for d in debs]
    x = os.path.join(C.CACHE, "x", f"k-{key}-{versions[0]}")
    if not os.path.exists(os.path.join(x, ".done")):
        shutil.rmtree(x, ignore_errors=True)
        os.makedirs(x)
        for d in debs:
            C.log(f"dpkg -x {os.path.basename(d)}")
            C.run(["dpkg", "-x", d, x])
        open(os.path.join(x, ".done"), "w").close()
    for mods in ("lib/modules", "usr/lib/modules"):
        if os.path.isdir(os.path.join(x, mods)):
            release = os.listdir(os.path.join(x, mods))[0]
            moddir = os.path.join(x, mods, release)
    image = None
    for cand in (os.path.join(moddir, "vmlinuz"), os.path.join(moddir, "vmlinux"),
                 os.path.join(x, "boot", f"vmlinuz-{release}"),
                 os.path.join(x, "boot", f"vmlinux-{release}")):
        if os.path.exists(cand):
            image = cand
            break
    config = next(p for p in (os.path.join(moddir, "config"),
                              os.path.join(x, "boot", f"config-{release}")) if os.path.exists(p))
    return {"key": key, "debarch": debarch,
            "package": ", ".join(f"{p}={v}" for p, v in zip(pkgs, versions)),
            "release": release, "moddir": moddir, "image": image, "config": config}


def busybox(debarch):
    deb = download("busybox-static", debarch)
    x = os.path.join(C.CACHE, "x", os.path.basename(deb)[:-4])
    if not os.path.isdir(x):
        C.run(["dpkg", "-x", deb, x])
    for p in ("bin/busybox", "usr/bin/busybox"):
        if os.path.exists(os.path.join(x, p)):
            return os.path.join(x, p)
    raise RuntimeError(f"no busybox in {deb}")


def build_helper(debarch):
    src = os.path.join(C.HERE, "oracle-helper.c")
    out = os.path.join(C.CACHE, f"oracle-helper-{debarch}")
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(C.CACHE, exist_ok=True)
        C.log(f"{CROSS_GCC[debarch]} -static oracle-helper.c")
        C.run([CROSS_GCC[debarch], "-O2", "-static", "-Wall", "-o", out + ".tmp", src])
        os.replace(out + ".tmp", out)
    return out


INIT = r"""#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
for m in $($B cat /modules.list); do
  $B insmod /lib/modules/$m.ko || echo "@@ORACLE WARN insmod-$m@@"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 600 ]; do $B usleep 100000; i=$((i+1)); done
@PRE@
ORACLE_HOTPLUG_TIMEOUT=@HOTPLUG_TIMEOUT@ /bin/oracle-helper run /scenario /dev/vda
echo "@@ORACLE EXIT $?@@"
$B sync
$B poweroff -f
"""


def build_initramfs(k, modules, scenario_text, path, pre=""):
    c = C.Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3)
    with open(busybox(k["debarch"]), "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    c.symlink("bin/sh", "busybox")
    with open(build_helper(k["debarch"]), "rb") as f:
        c.file("bin/oracle-helper", f.read(), 0o755)
    mods = C.needed_modules(k, targets=modules)
    for name, data in mods:
        c.file(f"lib/modules/{name}.ko", data)
    c.file("modules.list", "".join(n + "\n" for n, _ in mods).encode())
    c.file("init", INIT.replace("@HOTPLUG_TIMEOUT@", str(C.HOTPLUG_TIMEOUT))
           .replace("@PRE@", pre).encode(), 0o755)
    c.file("scenario", scenario_text.encode())
    with open(path, "wb") as f:
        f.write(c.finish())
    return [n for n, _ in mods]


def run_guest(name, qemu_argv, work, on_hotadd=None, on_hotremove=None):
    """Run QEMU until the helper says DONE; returns (console bytes, elapsed s).
    on_hotadd(qmp, arg) / on_hotremove(qmp, arg) drive QMP on the markers."""
    t0 = time.time()
    proc = subprocess.Popen(qemu_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    console = bytearray()
    marks = []
    cond = threading.Condition()

    def reader():
        pos = 0
        while True:
            chunk = proc.stdout.read1(65536)
            if not chunk:
                break
            with cond:
                console.extend(chunk)
                for m in C.MARK.finditer(console, max(0, pos - 200)):
                    if m.end() > pos:
                        marks.append((m.group(1).decode(), (m.group(2) or b"").decode()))
                pos = len(console)
                cond.notify_all()
        with cond:
            marks.append(("EOF", ""))
            cond.notify_all()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    qmp = C.QMP(os.path.join(work, "qmp.sock"))
    failure = None
    try:
        seen = 0
        while True:
            with cond:
                ok = cond.wait_for(lambda: len(marks) > seen,
                                   timeout=max(1, C.CAPTURE_TIMEOUT - (time.time() - t0)))
                if not ok:
                    failure = "timeout"
                    break
                kind, arg = marks[seen]
                seen += 1
            if kind in ("STEP", "DO"):
                C.log(f"{name}: {kind.lower()} {arg}  ({time.time() - t0:.0f}s)")
            elif kind == "HOTADD":
                on_hotadd(qmp, arg)
            elif kind == "HOTREMOVE":
                on_hotremove(qmp, arg)
            elif kind in ("FATAL", "EOF"):
                failure = f"{kind} {arg}"
                break
            elif kind == "DONE":
                break
    finally:
        qmp.close()
    try:
        proc.wait(timeout=120 if not failure else 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    th.join(10)
    stderr = proc.stderr.read().decode(errors="replace")
    if failure:
        with open(os.path.join(work, "console.log"), "wb") as f:
            f.write(console)
        raise RuntimeError(f"{name}: guest failed ({failure}); qemu stderr: {stderr[-2000:]}; "
                           f"console in {work}/console.log")
    return bytes(console), time.time() - t0


def read_results(text):
    """results.txt -> (steps, setup): setup writes ('- do') attach to the next step."""
    steps, pending = [], []
    for line in text.splitlines():
        d, op, b, res, ns, detail = line.split(" ", 5)
        if d == "-":
            pending.append({"op": op, "path": b, "result": res, "detail": detail,
                            "elapsed_ns": int(ns)})
            continue
        r = {"dir": d, "op": op, "block": None if b == "-" else b, "result": res,
             "detail": detail, "elapsed_ns": int(ns)}
        if op not in ("write",) and b != "-":
            r["block"] = int(b)
        if op == "write":       # "PATH=VALUE" (oracle-helper's write step)
            r["path"], _, r["value"] = r.pop("block").partition("=")
        if pending:
            r["setup"] = pending
            pending = []
        steps.append(r)
    return steps


def write_tarball(name, manifest, members, console):
    os.makedirs(C.OUT, exist_ok=True)
    dest = os.path.join(C.OUT, f"{name}.tar.xz")
    tmp = dest + ".tmp"

    def add(t, path, data):
        ti = tarfile.TarInfo(f"{name}/{path}")
        ti.size = len(data)
        ti.mtime = 0
        ti.mode = 0o644
        ti.uname = ti.gname = ""
        t.addfile(ti, io.BytesIO(data))

    with tarfile.open(tmp, "w:xz", preset=9, format=tarfile.GNU_FORMAT) as t:
        add(t, "manifest.json", (json.dumps(manifest, indent=1) + "\n").encode())
        for p, data in members:
            if p.startswith("steps/"):
                add(t, p, data)
        add(t, "console.log", console)
    os.replace(tmp, dest)
    C.log(f"{name}: wrote {os.path.relpath(dest, C.REPO)} ({os.path.getsize(dest)} bytes)")


def read_tarball(name):
    with tarfile.open(os.path.join(C.OUT, f"{name}.tar.xz")) as t:
        return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t if m.isfile()}


def run_capture(cap, keep_work=False):
    """Boot cap's kernel, run its scenario, write <name>.tar.xz and <name>.toml."""
    name = cap.name
    k = fetch_kernel(cap.kernel)
    work = tempfile.mkdtemp(prefix=f"oracle-{name}-", dir=C.CACHE)
    try:
        rs, re_ = cap.range
        scen_txt = f"# {name}\nrange {rs:#x} {re_:#x}\n" + "\n".join(cap.directives()) + "\n"
        initrd = os.path.join(work, "initrd.cpio")
        mods = build_initramfs(k, cap.modules, scen_txt, initrd)
        img = os.path.join(work, "out.img")
        nsteps = sum(1 for d in cap.directives() if d.startswith("step "))
        per_step = (re_ - rs) * 16 + (8 << 20)
        with open(img, "wb") as f:
            f.truncate((per_step * (nsteps + 2) + (1 << 20) + 0xFFFFF) & ~0xFFFFF)
        argv = cap.qemu_argv(k, initrd, img, os.path.join(work, "qmp.sock"))
        shown = [a.replace(k["image"], os.path.basename(k["image"]))
                 .replace(initrd, "initrd.cpio").replace(img, "out.img")
                 .replace(os.path.join(work, "qmp.sock"), "qmp.sock") for a in argv]
        C.log(f"{name}: booting {k['package']}")
        console, elapsed = run_guest(name, argv, work, cap.on_hotadd, cap.on_hotremove)
        C.log(f"{name}: guest finished in {elapsed:.0f}s")
        members = []
        with open(img, "rb") as f, tarfile.open(fileobj=f, mode="r:") as t:
            for m in t:
                members.append((m.name, t.extractfile(m).read()))
        files = dict(members)
        steps = read_results(files["results.txt"].decode())
        want = [d.split()[1] for d in cap.directives() if d.startswith("step ")]
        if [s["dir"] for s in steps] != want:
            raise RuntimeError(f"{name}: steps incomplete: {[s['dir'] for s in steps]}")
        qemu_version = subprocess.run([argv[0], "--version"], capture_output=True,
                                      text=True).stdout.splitlines()[0]
        manifest = {
            "name": name,
            "arch": cap.arch,
            "scenario": cap.scenario,
            "driver": cap.driver,
            "kernel_package": k["package"],
            "kernel_release": files["uname-r"].decode().strip(),
            "era": cap.era,
            "qemu_cmdline": shown,
            "qemu_version": qemu_version,
            "kernel_cmdline": cap.cmdline,
            "guest_proc_cmdline": files.get("proc-cmdline", b"").decode().strip(),
            "initramfs_modules": mods,
            "boot_memory_bytes": cap.boot_memory,
            "memmap_on_memory": cap.mom,
            "block_size_bytes": int(files["steps/00-boot/sys/devices/system/memory/block_size_bytes"], 16),
            "page_size": cap.page_size,
            "range_start_pfn": rs,
            "range_end_pfn": re_,
            "devices": cap.devices_info,
            "steps": steps,
            "notes": cap.notes + " kpageflags/kpagecount: raw little-endian u64 per pfn of "
                     "[range_start_pfn, range_end_pfn) exactly as read (pfn = address / page_size). "
                     "elapsed_ns are TCG-emulated timings. dmesg is the raw syslog buffer.",
        }
        write_tarball(name, manifest, members, console)
        write_toml(cap, manifest, {p[len("steps/"):]: d for p, d in members if p.startswith("steps/")})
        return manifest
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def write_toml(cap, manifest, step_files):
    with open(os.path.join(C.OUT, f"{cap.name}.toml"), "w") as f:
        f.write(cap.toml(manifest, step_files))
    C.log(f"{cap.name}: wrote tests/data/oracle/{cap.name}.toml")


def rewrite_toml(cap):
    files = read_tarball(cap.name)
    manifest = json.loads(files["manifest.json"])
    write_toml(cap, manifest, {p[len("steps/"):]: d for p, d in files.items()
                               if p.startswith("steps/")})


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v) + '"'


def toml_table(header, kv, comment=None):
    out = [""]
    out.append(header + (f"  # kernel: {comment}" if comment else ""))
    for k_, v in kv.items():
        out.append(f"{k_} = {toml_value(v)}")
    return out
