"""Shared by the driver-managed hot-add captures (virtio_mem.py, dax_kmem.py):
kernels (capture.py's, with every package named), one QEMU run
(harness.py's, with capture.py's x86 command line and initramfs) and
readers for the captured files.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import capture as C  # noqa: E402
import harness as H  # noqa: E402


def size_str(n):
    for unit, sh in (("G", 30), ("M", 20), ("K", 10)):
        if n and n % (1 << sh) == 0:
            return f"{n >> sh}{unit}"
    return str(n)


def fetch_kernel(era):
    """capture.py's kernel of ``era`` (7.3: the split linux-{binary,modules,base}
    packages from trixie-backports, extracted into one tree), with "packages":
    every package as PKG=VERSION."""
    k = C.fetch_kernel(era)
    k["packages"] = [f"{p}={k['version']}" for p in C.KERNEL_PACKAGES[era]]
    return k


def run_guest(name, k, *, cmdline, qemu_extra, scenario_text, nsteps, range_pfns,
              targets, deferred=(), machine="pc", on_host=None, on_step=None, keep_work=False):
    """Boot ``k`` (x86_64, -machine ``machine``) with the helper running
    ``scenario_text``.  on_host(qmp, arg) answers "@@ORACLE HOST arg@@" with
    (result, detail); on_step(qmp, dir) runs once QMP is up (dir "qemu-start")
    and after each step's capture.  Returns (qemu argv as shown, output disk
    members [(path, bytes)], console bytes)."""
    helper = C.build_helper()
    hooks = {}
    if on_host:
        hooks["HOST"] = on_host
    if on_step:
        hooks["STEP"] = lambda qmp, arg: on_step(qmp, arg.split()[0])
    return H.boot(
        name, f"{k['package']} ({k['version']})", k["vmlinuz"],
        initramfs=lambda path: C.build_initramfs(k, helper, scenario_text, path, targets, deferred),
        argv=lambda initrd, img, sock: (C.qemu_argv(k, cmdline, initrd, img, sock, machine)
                                        + list(qemu_extra)),
        range_pfns=range_pfns, nsteps=nsteps, hooks=hooks,
        on_start=(lambda qmp: on_step(qmp, "qemu-start")) if on_step else None,
        keep_work=keep_work)


def results(files):
    """results.txt -> [{dir, op, arg, result, detail, elapsed_ns}]"""
    return H.read_results(files["results.txt"].decode(), "arg")


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


def print_kpageflags(vals, rs, skip, most, uniform=True):
    """The histogram of a step's kpageflags and the pfn runs of each value but
    those in ``skip`` (and, unless ``uniform``, but a value every pfn has)."""
    hist = {}
    for v in vals:
        hist[v] = hist.get(v, 0) + 1
    print(f"   kpageflags ({len(vals)} pfns from {rs:#x}):",
          ", ".join(f"{v:#x} {flag_names(v)}: {c}" for v, c in sorted(hist.items())))
    for v in sorted(hist):
        if v not in skip and (uniform or hist[v] < len(vals)):
            rr = runs([rs + i for i, x in enumerate(vals) if x == v])
            print(f"     {v:#x} at", " ".join(f"[{a:#x},{b:#x})" for a, b in rr[:most]),
                  "..." if len(rr) > most else "")


def print_zones(files, p, rs, re_):
    """zoneinfo rows of the zones with pages, Normal/Movable buddyinfo rows
    with free pages, the iomem lines of [rs, re_) at step dir ``p``."""
    for z, row in zone_rows(files[p + "proc/zoneinfo"].decode()).items():
        if row.get("spanned"):
            print(f"   zoneinfo {z}: " + " ".join(f"{k_}={v}" for k_, v in row.items()))
    for line in files[p + "proc/buddyinfo"].decode().splitlines():
        if ("Normal" in line or "Movable" in line) and any(x != "0" for x in line.split()[4:]):
            print("   buddyinfo", " ".join(line.split()))
    for line in files[p + "proc/iomem"].decode().splitlines():
        a = line.strip().split("-")[0]
        if re.fullmatch(r"[0-9a-f]+", a) and rs * C.PAGE <= int(a, 16) < re_ * C.PAGE:
            print("   iomem", line)


def print_dmesg(lines, keep, drop, most):
    for x in [x for x in lines if re.search(keep, x, re.I) and not re.search(drop, x)][:most]:
        print("   dmesg", x)


def new_dmesg(files, steps):
    """{step: the kernel log lines that step added}"""
    prev, out = b"", {}
    for d in steps:
        dm = files.get(f"steps/{d}/dmesg", b"")
        new = dm[len(prev):] if dm.startswith(prev) else dm
        prev = dm
        out[d] = new.decode(errors="replace").splitlines()
    return out
