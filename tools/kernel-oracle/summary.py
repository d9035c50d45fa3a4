#!/usr/bin/env python3
"""Print what a kernel-oracle capture shows, step by step, in the terms hotmem
is compared in: the boot memory map and zones (dmesg), block size, the
captured pfn range, each step's outcome, kpageflags values (value:count) on
the range, zoneinfo/buddyinfo rows of the zones that are not boot-only, and
the state/valid_zones of the blocks inside the range.

    python3 tools/kernel-oracle/summary.py tests/data/oracle/arm64-6.12-mom1-kmem.tar.xz
"""
import collections
import json
import re
import struct
import sys
import tarfile

ZONE_KEYS = ("pages free", "min", "spanned", "present", "managed", "start_pfn:")


def load(path):
    with tarfile.open(path) as t:
        return {m.name.split("/", 1)[1]: t.extractfile(m).read() for m in t if m.isfile()}


def zone_rows(zoneinfo):
    rows = {}
    for sec in re.split(r"(?=^Node \d+, zone)", zoneinfo, flags=re.M):
        m = re.match(r"Node (\d+), zone\s+(\S+)", sec)
        if not m:
            continue
        vals = {}
        for k in ZONE_KEYS:
            mm = re.search(r"^\s+" + re.escape(k) + r"\s+(\d+)", sec, re.M)
            vals[k.rstrip(":").replace("pages ", "")] = int(mm.group(1)) if mm else None
        rows[m.group(2)] = vals
    return rows


def boot_lines(dmesg):
    out, on = [], False
    for line in dmesg.splitlines():
        msg = line[line.find("]") + 1:].strip() if "]" in line else line
        if msg.startswith("Zone ranges"):
            on = True
        if on:
            out.append(msg)
            if msg.startswith("Initmem setup"):
                break
    return out


def main(path):
    f = load(path)
    m = json.loads(f["manifest.json"])
    page = m.get("page_size", 4096)
    bs = m["block_size_bytes"]
    rs, re_ = m["range_start_pfn"], m["range_end_pfn"]
    print(f"== {m['name']}  {m['kernel_release']}  page {page}  block {bs:#x} "
          f"({bs // page} pages)  range pfn [{rs:#x}, {re_:#x})")
    print("   cmdline:", m["kernel_cmdline"])
    for line in boot_lines(f["steps/00-boot/dmesg"].decode(errors="replace")):
        print("   boot:", line)
    boot_zones = {z for z, v in zone_rows(f["steps/00-boot/proc/zoneinfo"].decode()).items()
                  if v["spanned"]}
    first_blk, last_blk = rs * page // bs, (re_ * page - 1) // bs
    for s in m["steps"]:
        d = s["dir"]
        setup = "".join(f" [{x['path'].rsplit('/', 1)[-1]}:{x['result']}]" for x in s.get("setup", []))
        print(f"-- {d}: {s['result']}{setup}")
        kf = f.get(f"steps/{d}/kpageflags", b"")
        c = collections.Counter(v for (v,) in struct.iter_unpack("<Q", kf))
        print("   kpageflags:", ", ".join(f"{v:#x}:{n}" for v, n in sorted(c.items())) or "(EOF)")
        for z, v in zone_rows(f[f"steps/{d}/proc/zoneinfo"].decode()).items():
            if z in boot_zones and z not in ("Normal",) or not v["spanned"]:
                continue
            print(f"   zone {z}: " + " ".join(f"{k}={v[k]}" for k in v))
        for line in f[f"steps/{d}/proc/buddyinfo"].decode().splitlines():
            z = line.split()[3]
            if z not in boot_zones or z == "Normal":
                print("   buddyinfo:", " ".join(line.split()[4:]), f"({z})")
        blocks = []
        for b in range(first_blk, last_blk + 1):
            st = f.get(f"steps/{d}/sys/devices/system/memory/memory{b}/state")
            if st is not None:
                vz = f[f"steps/{d}/sys/devices/system/memory/memory{b}/valid_zones"].decode().strip()
                blocks.append(f"{b}:{st.decode().strip()}/{vz}")
        print("   blocks:", "; ".join(blocks) or "-")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p)
