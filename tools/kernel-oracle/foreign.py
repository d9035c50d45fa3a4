"""Shared machinery of the non-x86 kernel-oracle captures (arm64.py, ppc64.py).

Kernels, busybox and nothing else come from Debian's archive through a
private apt configuration under .cache/apt (its own sources.list, lists,
cache and an empty dpkg status): the system's sources are left alone.  The
static helper is cross-built with gcc-<triplet>.  Everything else (initramfs,
the QEMU run, the helper's output disk, the tarball, the .toml emitters) is
harness.py's.

An arch module registers Capture objects with:
    name, arch (hotmem arch), debarch, kernel (KERNELS key), qemu argv builder,
    scenario (list of directives for oracle-helper), range (pfns), toml writer.
"""
import json
import os
import re
import shutil
import subprocess

import capture as C
import harness as H

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
    opts = C.private_apt(APT_DIR, SOURCES, "-o", "APT::Architecture=arm64",
                         "-o", "Debug::NoLocking=1",
                         *[o for a in DEBARCHES for o in ("-o", f"APT::Architectures::={a}")])
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


def build_initramfs(k, modules, scenario_text, path, pre=""):
    """The arch's busybox and cross-built helper; returns the modules /init loads."""
    mods = C.needed_modules(k, targets=modules)
    H.build_initramfs(path, busybox(k["debarch"]), build_helper(k["debarch"]), mods,
                      scenario_text, pre=pre)
    return [n for n, _ in mods]


def run_capture(cap, keep_work=False):
    """Boot cap's kernel, run its scenario, write <name>.tar.xz and <name>.toml."""
    name = cap.name
    k = fetch_kernel(cap.kernel)
    rs, re_ = cap.range
    scen_txt = f"# {name}\nrange {rs:#x} {re_:#x}\n" + "\n".join(cap.directives()) + "\n"
    want = [d.split()[1] for d in cap.directives() if d.startswith("step ")]
    mods = []

    def initramfs(path):
        mods[:] = build_initramfs(k, cap.modules, scen_txt, path)

    hooks = {k_: h for k_, h in (("HOTADD", cap.on_hotadd), ("HOTREMOVE", cap.on_hotremove)) if h}
    shown, members, console = H.boot(
        name, k["package"], k["image"], initramfs=initramfs,
        argv=lambda initrd, img, sock: cap.qemu_argv(k, initrd, img, sock),
        range_pfns=cap.range, nsteps=len(want), hooks=hooks, keep_work=keep_work)
    files = dict(members)
    steps = H.read_results(files["results.txt"].decode())
    H.check_steps(name, steps, want)
    manifest = {
        "name": name,
        "arch": cap.arch,
        "scenario": cap.scenario,
        "driver": cap.driver,
        "kernel_package": k["package"],
        "kernel_release": files["uname-r"].decode().strip(),
        "era": cap.era,
        "qemu_cmdline": shown,
        "qemu_version": H.qemu_version(shown[0]),  # the binary
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
    H.write_tarball(name, manifest, members, console)
    write_toml(cap, manifest, H.step_files(members))
    return manifest


def write_toml(cap, manifest, step_files):
    H.write_toml(cap.name, cap.toml(manifest, step_files))


def rewrite_toml(cap):
    files = H.load(cap.name)
    write_toml(cap, json.loads(files["manifest.json"]), H.step_files(files))
