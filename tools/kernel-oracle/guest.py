"""Shared by the driver-managed hot-add captures (virtio_mem.py, dax_kmem.py):
kernels (including Debian's split 7.x packages), the initramfs, one QEMU run
driven by the helper's @@ORACLE markers, the tarball, and readers for the
captured files.  Builds on capture.py (QMP, Cpio, needed_modules, helper).
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture as C  # noqa: E402

# x86_64 kernels.  6.1 and 6.12 are capture.py's; 7.3.4 comes from
# trixie-backports, split into linux-binary-* (vmlinuz), linux-modules-*
# (modules) and linux-base-* (config, modules.builtin).
SPLIT_KERNELS = {
    "7.3": ("7.3.4+deb13-amd64", "7.3.4-1~bpo13+1",
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
            "http://deb.debian.org/debian trixie-backports main"),
}


def size_str(n):
    for unit, sh in (("G", 30), ("M", 20), ("K", 10)):
        if n and n % (1 << sh) == 0:
            return f"{n >> sh}{unit}"
    return str(n)


def fetch_split_kernel(era):
    """Download linux-{binary,modules,base}-ABI from the era's suite through a
    private apt configuration (the system's sources are left alone)."""
    abi, version, source = SPLIT_KERNELS[era]
    apt = os.path.join(C.CACHE, f"apt-{era}")
    for d in ("lists/partial", "cache/archives/partial", "preferences.d"):
        os.makedirs(os.path.join(apt, d), exist_ok=True)
    with open(os.path.join(apt, "sources.list"), "w") as f:
        f.write(source + "\n")
    opts = []
    for k, v in (("Dir::Etc::SourceList", os.path.join(apt, "sources.list")),
                 ("Dir::Etc::SourceParts", "/nonexistent"),
                 ("Dir::Etc::Preferences", "/nonexistent"),
                 ("Dir::Etc::PreferencesParts", os.path.join(apt, "preferences.d")),
                 ("Dir::State::Lists", os.path.join(apt, "lists")),
                 ("Dir::Cache", os.path.join(apt, "cache")),
                 ("Dir::State::status", "/dev/null")):
        opts += ["-o", f"{k}={v}"]
    debs = os.path.join(C.CACHE, "debs")
    os.makedirs(debs, exist_ok=True)
    pkgs = [f"linux-{p}-{abi}" for p in ("binary", "modules", "base")]
    roots = {}
    for p in pkgs:
        deb = os.path.join(debs, f"{p}_{version}_amd64.deb")
        if not os.path.exists(deb):
            if not [f for f in os.listdir(os.path.join(apt, "lists")) if f.endswith("Packages")]:
                C.run(["apt-get", *opts, "update"])
            C.log(f"apt-get download {p}={version}")
            C.run(["apt-get", *opts, "download", f"{p}={version}"], cwd=debs)
        x = os.path.join(C.CACHE, "x", os.path.basename(deb)[:-4])
        if not os.path.isdir(os.path.join(x, "usr")):
            shutil.rmtree(x, ignore_errors=True)
            os.makedirs(x)
            C.run(["dpkg", "-x", deb, x])
        roots[p.split("-")[1]] = os.path.join(x, "usr", "lib", "modules", abi)
    # one module tree the way needed_modules() wants it (kernel/ + modules.builtin)
    merged = os.path.join(C.CACHE, "x", f"linux-{abi}-merged")
    if not os.path.isdir(merged):
        os.makedirs(merged + ".tmp", exist_ok=True)
        os.symlink(os.path.join(roots["modules"], "kernel"), os.path.join(merged + ".tmp", "kernel"))
        for fn in ("modules.builtin", "config"):
            os.symlink(os.path.join(roots["base"], fn), os.path.join(merged + ".tmp", fn))
        os.replace(merged + ".tmp", merged)
    return {"package": pkgs[0], "version": version, "root": roots["binary"],
            "packages": [f"{p}={version}" for p in pkgs],
            "vmlinuz": os.path.join(roots["binary"], "vmlinuz"), "release": abi,
            "moddir": merged}


def fetch_kernel(era):
    if era in SPLIT_KERNELS:
        return fetch_split_kernel(era)
    k = C.fetch_kernel(era)
    k["packages"] = [f"{k['package']}={k['version']}"]
    return k


def build_initramfs(k, helper, scenario_text, path, targets, deferred=()):
    """/init loads ``targets`` and their dependencies, except the modules in
    ``deferred``, which are only put in /lib/modules for the helper's insmod
    step (after its buffers are allocated and locked in boot memory)."""
    c = C.Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3)
    with open(shutil.which("busybox") or "/bin/busybox", "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    c.symlink("bin/sh", "busybox")
    with open(helper, "rb") as f:
        c.file("bin/oracle-helper", f.read(), 0o755)
    mods = C.needed_modules(k, targets)
    for name, data in mods:
        c.file(f"lib/modules/{name}.ko", data)
    c.file("modules.list", "".join(n + "\n" for n, _ in mods if n not in deferred).encode())
    c.file("init", C.INIT.replace("@HOTPLUG_TIMEOUT@", str(C.HOTPLUG_TIMEOUT)).encode(), 0o755)
    c.file("scenario", scenario_text.encode())
    with open(path, "wb") as f:
        f.write(c.finish())


def run_guest(name, k, *, cmdline, qemu_extra, scenario_text, nsteps, range_pfns,
              targets, deferred=(), on_host=None, on_step=None, keep_work=False):
    """Boot ``k`` with the helper running ``scenario_text``.  on_host(qmp, arg)
    answers "@@ORACLE HOST arg@@" with (result, detail); on_step(qmp, dir) runs
    after each step's capture.  Returns (qemu argv as shown, stream members
    [(path, bytes)], console bytes)."""
    helper = C.build_helper()
    rs, re_ = range_pfns
    work = tempfile.mkdtemp(prefix=f"oracle-{name}-", dir=C.CACHE)
    try:
        initrd = os.path.join(work, "initrd.cpio")
        build_initramfs(k, helper, scenario_text, initrd, targets, deferred)
        img = os.path.join(work, "out.img")
        per_step = (re_ - rs) * 16 + (8 << 20)
        with open(img, "wb") as f:
            f.truncate((per_step * (nsteps + 2) + (1 << 20) + 0xFFFFF) & ~0xFFFFF)
        sock = os.path.join(work, "qmp.sock")
        args = [C.QEMU, "-machine", "pc", "-accel", "tcg,thread=multi", "-cpu", "max",
                "-smp", "2", "-m", "2G,slots=12,maxmem=64G",
                "-nodefaults", "-display", "none", "-no-reboot",
                "-serial", "stdio", "-qmp", f"unix:{sock},server=on,wait=off",
                "-kernel", k["vmlinuz"], "-initrd", initrd, "-append", cmdline,
                "-drive", f"if=none,id=out,file={img},format=raw,cache=unsafe",
                "-device", "virtio-blk-pci,drive=out"] + list(qemu_extra)
        for i, a in enumerate(args):     # "-machine pc" + extra "-machine ..." options
            if a == "-machine" and i + 1 < len(args) and args[i + 1].startswith("pc,"):
                args[2] = args[i + 1]
                del args[i:i + 2]
                break
        shown = [a.replace(k["vmlinuz"], os.path.basename(k["vmlinuz"]))
                  .replace(initrd, "initrd.cpio").replace(img, "out.img")
                  .replace(sock, "qmp.sock") for a in args]
        C.log(f"{name}: booting {k['package']} ({k['version']})")
        t0 = time.time()
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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
        qmp = C.QMP(sock)
        failure = None
        try:
            if on_step:
                on_step(qmp, "qemu-start")
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
                if kind == "STEP":
                    extra = on_step(qmp, arg.split()[0]) if on_step else ""
                    C.log(f"{name}: {arg} {extra or ''} ({time.time() - t0:.0f}s)")
                elif kind == "HOST":
                    res, detail = on_host(qmp, arg) if on_host else ("EINVAL", "no host handler")
                    proc.stdin.write(f"go {res} {detail}\n".encode())
                    proc.stdin.flush()
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
            raise RuntimeError(f"{name}: guest failed ({failure}); qemu stderr: "
                               f"{stderr[-2000:]}; console in {work}/console.log")
        C.log(f"{name}: guest finished in {time.time() - t0:.0f}s")
        members = []
        with open(img, "rb") as f, tarfile.open(fileobj=f, mode="r:") as t:
            for m in t:
                members.append((m.name, t.extractfile(m).read()))
        return shown, members, bytes(console)
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def results(files):
    """results.txt -> [{dir, op, arg, result, detail, elapsed_ns}]"""
    out = []
    for line in files["results.txt"].decode().splitlines():
        d, op, arg, res, ns, detail = line.split(" ", 5)
        out.append({"dir": d, "op": op, "arg": arg, "result": res, "detail": detail,
                    "elapsed_ns": int(ns)})
    return out


def qemu_version():
    return subprocess.run([C.QEMU, "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]


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


def load(name):
    """{path inside <name>/: bytes} of tests/data/oracle/<name>.tar.xz"""
    with tarfile.open(os.path.join(C.OUT, f"{name}.tar.xz")) as t:
        return {mm.name.split("/", 1)[1]: t.extractfile(mm).read() for mm in t if mm.isfile()}


# --------------------------------------------------------------------------
# reading captured views

KPF_NAMES = {0: "LOCKED", 2: "REFERENCED", 3: "UPTODATE", 4: "DIRTY", 5: "LRU", 6: "ACTIVE",
             7: "SLAB", 10: "BUDDY", 11: "MMAP", 12: "ANON", 15: "COMPOUND_HEAD",
             16: "COMPOUND_TAIL", 17: "HUGE", 20: "NOPAGE", 23: "OFFLINE", 24: "ZERO_PAGE",
             25: "IDLE", 26: "PGTABLE", 32: "RESERVED", 37: "OWNER_PRIVATE"}


def flag_names(v):
    return "|".join(n for b, n in sorted(KPF_NAMES.items()) if v >> b & 1) or "0"


def runs(pfns):
    """sorted pfns -> [(start, end)) runs"""
    out = []
    for p in pfns:
        if out and out[-1][1] == p:
            out[-1][1] = p + 1
        else:
            out.append([p, p + 1])
    return [tuple(r) for r in out]


def zone_rows(zoneinfo, zones=("Normal", "Movable")):
    """{zone: {free, spanned, present, managed, start_pfn, pcp}} (pcp: per-cpu counts)"""
    rows, cur = {}, None
    for line in zoneinfo.splitlines():
        mm = re.match(r"Node (\d+), zone\s+(\S+)", line)
        if mm:
            cur = mm.group(2) if mm.group(2) in zones else None
            if cur:
                rows[cur] = {"pcp": []}
            continue
        if cur:
            f = line.split()
            if len(f) >= 3 and f[0] == "pages" and f[1] == "free":
                rows[cur]["free"] = int(f[2])
            elif len(f) == 2 and f[0] in ("spanned", "present", "managed", "start_pfn:"):
                rows[cur][f[0].rstrip(":")] = int(f[1])
            elif len(f) == 2 and f[0] == "count:":
                rows[cur]["pcp"].append(int(f[1]))
    return rows


def memory_blocks(files, step):
    """{block: (state, valid_zones)} of a step"""
    p = f"steps/{step}/sys/devices/system/memory/"
    out = {}
    for x in files:
        if x.startswith(p + "memory") and x.endswith("/state"):
            b = int(x[len(p) + 6:].split("/")[0])
            out[b] = (files[x].decode().strip(),
                      files.get(f"{p}memory{b}/valid_zones", b"?").decode().strip())
    return dict(sorted(out.items()))


def new_dmesg(files, steps):
    """{step: the kernel log lines that step added}"""
    prev, out = b"", {}
    for d in steps:
        dm = files.get(f"steps/{d}/dmesg", b"")
        new = dm[len(prev):] if dm.startswith(prev) else dm
        prev = dm
        out[d] = new.decode(errors="replace").splitlines()
    return out
