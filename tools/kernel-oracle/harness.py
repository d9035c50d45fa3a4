"""What every kernel-oracle capture shares, whatever the arch or driver: the
initramfs, one QEMU run driven by the helper's @@ORACLE markers (a console
reader thread, host-side hooks, timeouts), the output disk, results.txt, the
tarball and the .toml emitters.  capture.py (x86 DIMMs), guest.py
(virtio_mem.py, dax_kmem.py) and foreign.py (arm64.py, ppc64.py) use it;
QMP, Cpio, needed_modules() and the helper build stay in capture.py.
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

import capture as C     # capture.py imports this file: use C's names at call time only

MARK = re.compile(rb"@@ORACLE ([A-Z]+)(?: ([^@\r\n]*))?@@")

# @PRE@: shell lines an arch needs before the helper runs (none so far)
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


def build_initramfs(path, busybox, helper, mods, scenario_text, deferred=(), pre=""):
    """Write the initramfs to ``path``: static ``busybox`` and ``helper``, the
    modules ``mods`` ([(name, bytes)] in load order: /init loads all but those
    in ``deferred``, which stay in /lib/modules for the helper's insmod step)
    and the scenario."""
    c = C.Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"):
        c.dir(d)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3)
    with open(busybox, "rb") as f:
        c.file("bin/busybox", f.read(), 0o755)
    c.symlink("bin/sh", "busybox")
    with open(helper, "rb") as f:
        c.file("bin/oracle-helper", f.read(), 0o755)
    for name, data in mods:
        c.file(f"lib/modules/{name}.ko", data)
    c.file("modules.list", "".join(n + "\n" for n, _ in mods if n not in deferred).encode())
    init = INIT.replace("@HOTPLUG_TIMEOUT@", str(C.HOTPLUG_TIMEOUT))
    c.file("init", init.replace("@PRE@\n", pre + "\n" if pre else "").encode(), 0o755)
    c.file("scenario", scenario_text.encode())
    with open(path, "wb") as f:
        f.write(c.finish())


def run_qemu(name, argv, sock, hooks=None, on_start=None, timeout=None):
    """Run ``argv`` until the helper prints @@ORACLE DONE@@; returns (console
    bytes, elapsed s).  A reader thread collects the serial console (QEMU's
    stdout) and its @@ORACLE KIND ARG@@ marks; this thread answers them.
    on_start(qmp) runs once QMP is up.  hooks[KIND](qmp, arg) runs on a mark:
    a STEP hook may return text for the log line, a HOST hook returns (result,
    detail), sent to the guest's stdin as "go RESULT DETAIL".  FATAL, end of
    output or ``timeout`` s (capture.CAPTURE_TIMEOUT) fail the run
    (RuntimeError, console in console.log next to ``sock``)."""
    hooks = hooks or {}
    timeout = timeout or C.CAPTURE_TIMEOUT
    t0 = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE if "HOST" in hooks else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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
                for m in MARK.finditer(console, max(0, pos - 200)):
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
        if on_start:
            on_start(qmp)
        seen = 0
        while True:
            with cond:
                ok = cond.wait_for(lambda: len(marks) > seen,
                                   timeout=max(1, timeout - (time.time() - t0)))
                if not ok:
                    failure = "timeout"
                    break
                kind, arg = marks[seen]
                seen += 1
            if kind in ("FATAL", "EOF"):
                failure = f"{kind} {arg}"
                break
            if kind == "DONE":
                break
            hook = hooks.get(kind)
            if kind == "HOST":
                res, detail = hook(qmp, arg) if hook else ("EINVAL", "no host handler")
                proc.stdin.write(f"go {res} {detail}\n".encode())
                proc.stdin.flush()
            elif kind in ("STEP", "DO"):
                extra = hook(qmp, arg) if hook else None
                C.log(f"{name}: {'do ' if kind == 'DO' else ''}{arg}"
                      f"{' ' + extra if extra else ''}  ({time.time() - t0:.0f}s)")
            elif hook:
                hook(qmp, arg)
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
        work = os.path.dirname(sock)
        with open(os.path.join(work, "console.log"), "wb") as f:
            f.write(console)
        raise RuntimeError(f"{name}: guest failed ({failure}); qemu stderr: {stderr[-2000:]}; "
                           f"console in {work}/console.log")
    return bytes(console), time.time() - t0


def boot(name, label, image, *, initramfs, argv, range_pfns, nsteps, hooks=None,
         on_start=None, keep_work=False):
    """One capture's guest in a fresh work dir under .cache: initramfs(path)
    writes the initramfs, argv(initrd, img, sock) is the QEMU command; the
    output disk is sized for ``nsteps`` steps of ``range_pfns``.  Returns
    (argv as shown in manifests, [(path, bytes)] of the output disk, console)."""
    work = tempfile.mkdtemp(prefix=f"oracle-{name}-", dir=C.CACHE)
    try:
        initrd = os.path.join(work, "initrd.cpio")
        initramfs(initrd)
        img = os.path.join(work, "out.img")
        rs, re_ = range_pfns
        per_step = (re_ - rs) * 16 + (8 << 20)     # kpageflags + kpagecount + the rest
        with open(img, "wb") as f:
            f.truncate((per_step * (nsteps + 2) + (1 << 20) + 0xFFFFF) & ~0xFFFFF)
        sock = os.path.join(work, "qmp.sock")
        args = argv(initrd, img, sock)
        shown = [a.replace(image, os.path.basename(image)).replace(initrd, "initrd.cpio")
                 .replace(img, "out.img").replace(sock, "qmp.sock") for a in args]
        C.log(f"{name}: booting {label}")
        console, elapsed = run_qemu(name, args, sock, hooks, on_start)
        C.log(f"{name}: guest finished in {elapsed:.0f}s")
        with open(img, "rb") as f, tarfile.open(fileobj=f, mode="r:") as t:
            members = [(m.name, t.extractfile(m).read()) for m in t]
        return shown, members, console
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def qemu_version(binary=None):
    return subprocess.run([binary or C.QEMU, "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]


def read_results(text, arg_key="block"):
    """results.txt -> [{dir, op, <arg_key>, result, detail, elapsed_ns}].
    arg_key "arg": the argument as written.  arg_key "block": None for "-",
    the block number, or for a write step path and value; setup writes ("-"
    dir, the helper's 'do') attach to the next step as its "setup"."""
    steps, pending = [], []
    for line in text.splitlines():
        d, op, a, res, ns, detail = line.split(" ", 5)
        if d == "-":
            pending.append({"op": op, "path": a, "result": res, "detail": detail,
                            "elapsed_ns": int(ns)})
            continue
        r = {"dir": d, "op": op, arg_key: None if a == "-" and arg_key == "block" else a,
             "result": res, "detail": detail, "elapsed_ns": int(ns)}
        if arg_key == "block" and a != "-":
            if op == "write":       # "PATH=VALUE" (oracle-helper's write step)
                r["path"], _, r["value"] = r.pop("block").partition("=")
            else:
                r["block"] = int(a)
        if pending:
            r["setup"] = pending
            pending = []
        steps.append(r)
    return steps


def check_steps(name, results, want):
    if [r["dir"] for r in results] != list(want):
        raise RuntimeError(f"{name}: steps incomplete: {[r['dir'] for r in results]}")


def write_tarball(name, manifest, members, console):
    """tests/data/oracle/<name>.tar.xz: manifest.json, the output disk's steps/
    and console.log under <name>/ (xz -9, mtime 0, no owner)."""
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
        return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t if m.isfile()}


def step_files(files):
    """{"NN-op/file": bytes} of {path: bytes} or [(path, bytes)]"""
    items = files.items() if isinstance(files, dict) else files
    return {p[len("steps/"):]: d for p, d in items if p.startswith("steps/")}


# --------------------------------------------------------------------------
# .toml scenarios

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v) + '"'


def toml_table(header, kv, comment=None, note=(), tails=None):
    """A blank line, the ``note`` comment lines, ``header`` (with "# kernel:
    comment"), one line a key (ending in tails[key] where given)."""
    out = ["", *note, header + (f"  # kernel: {comment}" if comment else "")]
    for k_, v in kv.items():
        out.append(f"{k_} = {toml_value(v)}" + (tails or {}).get(k_, ""))
    return out


def toml_step(kv, result):
    """A [[step]] whose non-ok kernel outcome is also its ``expect``."""
    return toml_table("[[step]]", kv if result == "ok" else {**kv, "expect": result}, result)


def toml_head(name, tool, text):
    """The first two lines of a generated scenario; ``text`` goes on after the
    generator's name."""
    return [f"# Mirrors kernel-oracle capture {name} (tests/data/oracle/{name}.tar.xz);",
            f"# generated by tools/kernel-oracle/{tool}.  {text}"]


def machine_table(arch, kernel, boot_memory, memmap_on_memory, auto_online_blocks="offline",
                  tails=None):
    return toml_table("[machine]", {
        "arch": arch, "kernel": kernel, "boot_memory": boot_memory,
        "memmap_on_memory": memmap_on_memory, "online_policy": "contig-zones",
        "auto_online_blocks": auto_online_blocks, "on_error": "continue"}, tails=tails)


def write_toml(name, text):
    with open(os.path.join(C.OUT, f"{name}.toml"), "w") as f:
        f.write(text)
    C.log(f"{name}: wrote tests/data/oracle/{name}.toml")
