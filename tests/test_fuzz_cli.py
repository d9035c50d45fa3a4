"""Fuzzing the command line with generated scenario files, in-process.

A generator writes scenario files, valid and malformed (every class of
issue 9: binary and UTF-16 files, deep nesting, thousands of digits,
non-ASCII digits, op tables, huge ranges and names, negative seeds, empty
files, wrong types, bad combinations, errors only the machine can find, and
more), and runs each through ``hotmem run``, ``run --json``, ``compare`` and
``run --export`` by calling ``hotmem.cli.main``.  Every run must give:

- a malformed file: exit 2, nothing on stdout, exactly one stderr line
  ``hotmem: error: ...`` under 300 characters, and no file written at all;
- a valid file: exit 0 or 1, nothing on stderr, files written only inside
  the export folder;
- never an exception out of main (a traceback), a run over the time limit
  (a hang) or a jump of the peak RSS by more than 512 MiB (a memory blow-up).

The generator draws through a small interface, from hypothesis in the tests
(so failures shrink) or from random.Random for counting over many files:

    HOTMEM_FUZZ_LONG=1 pytest tests/test_fuzz_cli.py      # 5,000 malformed files
    python tests/test_fuzz_cli.py --files 5000 [--seed 0]   # the same, with figures
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotmem.arch import ARCHES
from hotmem.cli import main

ARCHS = sorted(ARCHES)
KERNELS = ("5.13", "5.15", "6.1", "6.6", "6.8", "6.11", "6.12", "6.12.117+deb12-amd64")
LONG = os.environ.get("HOTMEM_FUZZ_LONG") == "1"
TIME_LIMIT = 60            # seconds per run: more is a hang
RSS_JUMP = 512 << 20       # bytes of peak RSS growth in one run: more is a blow-up
MODES = ("run", "run --json", "compare", "run --export")


# ---------------------------------------------------------------- drawing

class RandDraw:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.r.randint(lo, hi)

    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]


class HypDraw:
    def __init__(self, data):
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]


# ---------------------------------------------------------------- TOML text

def tv(v) -> str:
    """A TOML value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(tv(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {tv(x)}" for k, x in v.items()) + "}"
    if isinstance(v, Raw):
        return v.text
    raise TypeError(v)


@dataclass
class Raw:
    """A value written as it is (a bare TOML literal such as a date)."""
    text: str


def emit(machine: dict | None, steps: list[dict]) -> str:
    out = []
    if machine is not None:
        out.append("[machine]")
        out += [f"{k} = {tv(v)}" for k, v in machine.items()]
    for s in steps:
        out.append("[[step]]")
        out += [f"{k} = {tv(v)}" for k, v in s.items()]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- valid scenarios

def valid_machine(d) -> dict:
    m: dict = {"arch": d.choice(ARCHS), "boot_memory": d.choice(("256M", "512M", "1G"))}
    if d.int(0, 4) == 0:
        m.update(design="rfc2018", kernel="4.20", memmap_on_memory=d.choice(("y", "n")))
    else:
        k = d.choice(KERNELS)
        m.update(kernel=k, memmap_on_memory=d.choice(
            ("n", "y", "force") if k.startswith(("6.6", "6.8", "6.11", "6.12")) else ("n", "y")))
    if d.int(0, 1):
        m["online_policy"] = d.choice(("contig-zones", "auto-movable"))
    if d.int(0, 1):
        m["on_error"] = d.choice(("stop", "continue"))
    if d.int(0, 2) == 0:
        m["nodes"] = d.int(1, 3)
    m["max_memory"] = "32G"
    return m


def valid_step(d, nodes: int) -> dict:
    op = d.choice(("add", "add", "online", "online", "offline", "remove", "alloc", "free"))
    s: dict = {"op": op}
    if op == "add":
        s["size"] = d.choice(("128M", "256M", "512M", "1G", "100M", 268435456))
        if d.int(0, 2) == 0:
            s["start"] = d.choice(("0x100000000", "0x140000000", "4G"))
        if d.int(0, 3) == 0:
            s["node"] = d.int(0, nodes - 1)
    elif op in ("online", "offline"):
        s["blocks"] = d.choice(("offline", "online", [d.int(0, 63)],
                                f"{d.int(0, 40)}-{d.int(40, 63)}", d.int(0, 63)))
        if op == "online" and d.int(0, 1):
            s["type"] = d.choice(("online", "online_kernel", "online_movable"))
    elif op == "remove":
        # 16P and 2**62 bytes: EINVAL at once, no array over the range (issue 9)
        s.update(start=d.choice(("0x100000000", "0x140000000", "0x180000000")),
                 size=d.choice(("128M", "256M", "1G", "16P", 1 << 62)))
    else:
        s["pages"] = d.choice((1, 100, 4096, 100000)) if op == "alloc" or d.int(0, 1) else "all"
        s["kind"] = d.choice(("movable", "unmovable"))
        if op == "alloc":
            s["placement"] = d.choice(("random", "lowest", "kernel"))
            if d.int(0, 1):
                s["zone"] = d.choice(("Normal", "Movable"))
        s["seed"] = d.int(0, 1000)
        if d.int(0, 3) == 0:
            s["node"] = d.int(0, nodes - 1)
    if d.int(0, 5) == 0:
        s["expect"] = d.choice(("ok", "EBUSY", "EINVAL", "ENOMEM"))
    if d.int(0, 7) == 0:
        s["note"] = "a note"
    return s


def valid_scenario(d) -> tuple[dict, list[dict]]:
    m = valid_machine(d)
    return m, [valid_step(d, m.get("nodes", 1)) for _ in range(d.int(0, 6))]


# ---------------------------------------------------------------- malformed

def big(d, unit: str = "9", lo: int = 30, hi: int = 6000) -> str:
    return unit * d.int(lo, hi)


BAD_SIZES = ("lots", "\u0661G", "\uff11G", "\u0968M", "-1G", "1.5G", "0x", "0xg", "1 G B",
             "1Q", "0x" + "f" * 17, "18446744073709551616", "16384P", "1G\n", "")
BAD_KERNELS = ("6.12.x.y", "\u0666.\u0661\u0662", "6", "six", "3.10", "9.1", "6.12-", "6..12",
               "6.12.1.2", " ", "\uff16.\uff11")


def bad_machine_value(d, key: str):
    """A value the [machine] key refuses whatever the rest is."""
    common = [[1], {"a": 1}, Raw("1979-05-27T07:32:00Z"), 1.5, Raw("inf"), Raw("nan")]
    per_key = {
        "arch": ["vax", "x86_64 ", "ARM64", 5, True, big(d, "x", 100, 3_000_000), "x86\u200b_64"],
        "kernel": list(BAD_KERNELS) + [6, 6.1, big(d, "6") + ".1", "6." + big(d, "1")],
        "boot_memory": list(BAD_SIZES) + [-1, True, big(d), Raw(big(d, "9", 20, 4000))],
        "block_size": list(BAD_SIZES) + [-5, True, "100M", "64K"],
        "max_memory": list(BAD_SIZES) + [-1, "100M", big(d)],
        "memmap_on_memory": ["maybe", 2, -1, "forced", big(d, "y")],
        "online_policy": ["contig", 1, "auto_movable"],
        "auto_movable_ratio": [-1, "301", True, 1 << 40, Raw("1" + "0" * d.int(30, 6000))],
        "auto_online_blocks": ["offline2", 1, "online-movable"],
        "on_error": ["abort", True, 0],
        "design": ["rfc", "RFC2018", 2018, "nope"],
        "nodes": [0, 65, -1, True, "2", 1 << 63],
        "thp": ["yes", 1, "true"], "movable_node": [0, "no"], "hypervisor": ["y"],
    }
    return d.choice(per_key[key] + common)


BAD_STEPS = [
    {"op": ["add"]}, {"op": {"x": 1}}, {"op": "teleport"}, {"op": 5}, {"op": True}, {},
    {"op": "ADD", "size": "1G"}, {"op": "add"}, {"op": "remove", "start": "0x100000000"},
    {"op": "alloc"}, {"op": "online"}, {"op": "online", "blocks": "some"},
    {"op": "add", "size": "1G", "strat": "0x0"},
    {"op": "online", "blocks": "0-9223372036854775807"}, {"op": "online", "blocks": [-1]},
    {"op": "offline", "blocks": [True]}, {"op": "offline", "blocks": []},
    {"op": "online", "blocks": "\u0663-\u0664"}, {"op": "online", "blocks": "40-32"},
    {"op": "online", "blocks": 1.5}, {"op": "online", "blocks": {"a": 1}},
    {"op": "online", "blocks": "offline", "type": "offline"},
    {"op": "online", "blocks": "offline", "type": ["online"]},
    {"op": "alloc", "pages": 10, "seed": -1}, {"op": "free", "pages": 1, "seed": -1},
    {"op": "alloc", "pages": 0}, {"op": "alloc", "pages": -5}, {"op": "alloc", "pages": True},
    {"op": "alloc", "pages": 1 << 62}, {"op": "free", "pages": "some"},
    {"op": "alloc", "pages": 1, "kind": "pinned"}, {"op": "alloc", "pages": 1, "kind": ["movable"]},
    {"op": "alloc", "pages": 1, "placement": "middle"}, {"op": "alloc", "pages": 1, "zone": 5},
    {"op": "alloc", "pages": 1, "zone": "N" * 5000}, {"op": "alloc", "pages": 1, "node": -1},
    {"op": "add", "size": "1G", "node": 64}, {"op": "add", "size": "1G", "driver": "usb"},
    {"op": "add", "size": "1G", "expect": "EWHAT"}, {"op": "add", "size": "1G", "expect": 16},
    {"op": "add", "size": "1G", "note": 3}, {"op": "add", "size": "1G", "capture": ["x"]},
    {"op": "alloc", "pages": 1, "seed": 1 << 64}, {"op": "alloc", "pages": 1, "node": 7},
    {"op": "free", "pages": 1, "node": 5}, {"op": "online", "blocks": 4000000000},
]
# steps only the built machine can refuse (placed first so nothing stops the run before)
RUNTIME_BAD_STEPS = [
    {"op": "online", "blocks": "0-100000"}, {"op": "offline", "blocks": [1, 100000]},
    {"op": "online", "blocks": 1000000}, {"op": "alloc", "pages": 1, "zone": "Bogus"},
    {"op": "free", "pages": 1, "zone": "Highmem"},
]
BAD_COMBOS = [
    {"memmap_on_memory": "force", "kernel": "6.1"}, {"boot_memory": "1M"},
    {"boot_memory": "1G", "max_memory": "512M"}, {"block_size": "64M", "arch": "x86_64"},
    {"arch": "s390x", "block_size": "128M"}, {"boot_memory": "4097K"},
]
BAD_TOML = [
    "[machine\n", "[machine]\narch = \"x86_64\n", "[machine]\narch = \"a\"\narch = \"b\"\n",
    "[machine]\narch =\n", "[[step]]\nop = 'add'\nsize = 1G\n", "= 1\n", "[machine]]\n",
    "[machine]\nkernel = \"6.12\" # ok\nboot_memory = 4G\n", "\"\"\"\n", "[machine]\n\x00\n",
    "[machine]\narch = \"x86\x01_64\"\n", "[a.b.c\n", "x = [1,\n", "x = {a = 1,}\n",
]
BAD_SHAPES = [
    "machine = 5\n", "step = 5\n", "[[machine]]\narch = \"x86_64\"\n",
    "[step]\nop = \"add\"\n", "step = [1, 2]\n", "[colour]\nred = 1\n", "x = 1\n",
    "[machine]\n[machine.sub]\na = 1\n", "[[step]]\n[step.x]\n",
]


def malformed(d) -> tuple[str, bytes]:
    """(class, file content) of a file hotmem must refuse with exit 2."""
    kind = d.choice(("binary", "utf16", "deep", "empty", "digits", "op", "blocks", "seed",
                     "kernel", "nonascii", "hugename", "machine", "step", "runtime", "combo",
                     "toml", "shape", "oversize", "unknown"))
    m, steps = valid_scenario(d)
    if kind == "binary":
        rnd = random.Random(d.int(0, 1 << 30))
        body = bytes(rnd.randrange(256) for _ in range(d.int(1, 3000)))
        # a byte that is never UTF-8 somewhere in it
        pos = d.int(0, len(body))
        return kind, body[:pos] + d.choice((b"\xff", b"\xc0", b"\xfe")) + body[pos:]
    if kind == "utf16":
        text = emit(m, steps)
        return kind, text.encode(d.choice(("utf-16", "utf-16-le", "utf-16-be", "utf-32")))
    if kind == "deep":
        n = d.int(1000, 8000)
        value = d.choice(("[" * n + "]" * n, "{a = " * n + "1" + "}" * n,
                          "[" * n + "1" + "]" * n))
        key = d.choice(("x", "[machine]\narch", "[[step]]\nop"))
        return kind, f"{key} = {value}\n".encode()
    if kind == "empty":
        return kind, d.choice((b"", b"\n", b"   \n\n", b"# a comment\n", b"\xef\xbb\xbf",
                               b"# [machine]\n# arch = 'x86_64'\n"))
    if kind == "digits":
        key = d.choice(("boot_memory", "max_memory", "block_size"))
        m[key] = d.choice((big(d), big(d) + "G", "0x" + big(d, "f"), Raw(big(d, "9", 20, 6000))))
        return kind, emit(m, steps).encode()
    if kind == "op":
        steps.insert(d.int(0, len(steps)), {"op": d.choice((["add"], {"x": 1}, 7, "", "Add"))})
        return kind, emit(m, steps).encode()
    if kind == "blocks":
        steps.insert(d.int(0, len(steps)), {
            "op": d.choice(("online", "offline")),
            "blocks": d.choice(("0-9223372036854775807", "0-" + big(d), [-1], "-1-5", "1e3-2e3",
                                [1, "2"], "32-", "\u0663\u0662-\u0663\u0669",
                                big(d, "1", 21, 5000) + "-1"))})
        return kind, emit(m, steps).encode()
    if kind == "seed":
        steps.insert(d.int(0, len(steps)), {"op": d.choice(("alloc", "free")), "pages": 10,
                                            "seed": d.choice((-1, -(1 << 63), 1 << 64, "1", 1.0))})
        return kind, emit(m, steps).encode()
    if kind == "kernel":
        m["kernel"] = d.choice(BAD_KERNELS + (big(d, "6") + ".1",))
        return kind, emit(m, steps).encode()
    if kind == "nonascii":
        key = d.choice(("boot_memory", "kernel", "size"))
        digits = d.choice(("\u0661\u0662\u0668", "\uff11\uff12\uff18", "\u0967\u0968", "\u00b2"))
        if key == "size":
            steps.insert(0, {"op": "add", "size": digits + "M"})
        elif key == "kernel":
            m["kernel"] = "6." + digits
        else:
            m["boot_memory"] = digits + "M"
        return kind, emit(m, steps).encode()
    if kind == "hugename":
        m[d.choice(("arch", "design", "online_policy"))] = big(d, "x", 1000, 3_000_000)
        return kind, emit(m, steps).encode()
    if kind == "machine":
        key = d.choice(("arch", "kernel", "boot_memory", "block_size", "max_memory",
                        "memmap_on_memory", "online_policy", "auto_movable_ratio",
                        "auto_online_blocks", "on_error", "design", "nodes", "thp",
                        "movable_node", "hypervisor"))
        m[key] = bad_machine_value(d, key)
        return kind, emit(m, steps).encode()
    if kind == "step":
        steps.insert(d.int(0, len(steps)), dict(d.choice(BAD_STEPS)))
        return kind, emit(m, steps).encode()
    if kind == "runtime":
        m.pop("nodes", None)
        return kind, emit(m, [dict(d.choice(RUNTIME_BAD_STEPS))] + steps).encode()
    if kind == "combo":
        m.update(d.choice(BAD_COMBOS))
        m.pop("design", None)
        if m.get("kernel") == "4.20":
            m["kernel"] = "6.1"
        return kind, emit(m, steps).encode()
    if kind == "toml":
        text = emit(m, steps)
        pos = d.int(0, len(text))
        return kind, (text[:pos].rsplit("\n", 1)[0] + "\n" + d.choice(BAD_TOML)).encode() \
            if d.int(0, 1) else d.choice(BAD_TOML).encode()
    if kind == "shape":
        return kind, d.choice(BAD_SHAPES).encode()
    if kind == "oversize":
        return kind, b"# " + b"x" * (4 << 20) + b"\n[machine]\n"
    # unknown keys at every level
    where = d.int(0, 2)
    if where == 0:
        m[d.choice(("colour", "Arch", "kernel_version", "x" * d.int(1, 5000)))] = 1
    elif where == 1:
        steps.append({"op": "add", "size": "1G", d.choice(("strat", "blocks", "sise")): 1})
    else:
        return kind, (emit(m, steps) + "[extra]\na = 1\n").encode()
    return kind, emit(m, steps).encode()


def valid(d) -> tuple[str, bytes]:
    m, steps = valid_scenario(d)
    return "valid", emit(m, steps).encode()


# ---------------------------------------------------------------- running

class Hang(Exception):
    pass


@dataclass
class Tally:
    files: int = 0
    runs: int = 0
    tracebacks: list = field(default_factory=list)
    hangs: list = field(default_factory=list)
    blowups: list = field(default_factory=list)
    wrong: list = field(default_factory=list)      # exit status, message or writes wrong
    by_class: dict = field(default_factory=dict)
    slowest: tuple = (0.0, "")
    seconds: float = 0.0

    def problems(self) -> list:
        return self.tracebacks + self.hangs + self.blowups + self.wrong


def tree(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def _alarm(signum, frame):
    raise Hang()


def run_one(ws: Path, content: bytes, kind: str, mode: str, tally: Tally, label: str) -> None:
    """One CLI run of one file; what went wrong goes to the tally."""
    scen = ws / "s.toml"
    scen.write_bytes(content)
    export = ws / "export"
    argv = {"run": ["run", str(scen)], "run --json": ["run", str(scen), "--json"],
            "compare": ["compare", str(scen)],
            "run --export": ["run", str(scen), "--export", str(export)]}[mode]
    if mode == "run --export" and len(content) % 2:
        argv.append("--export-each")
    before = tree(ws)
    out, err = io.StringIO(), io.StringIO()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    t0 = time.monotonic()
    where = f"{label} {kind} {mode}"
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except Hang:
        tally.hangs.append(where)
        return
    except BaseException as exc:   # noqa: BLE001 - anything out of main is a traceback
        tally.tracebacks.append(f"{where}: {type(exc).__name__}: {str(exc)[:200]}")
        return
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        dt = time.monotonic() - t0
        tally.runs += 1
        if dt > tally.slowest[0]:
            tally.slowest = (dt, where)
    if (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - rss0 > RSS_JUMP:
        tally.blowups.append(where)
    e, o = err.getvalue(), out.getvalue()
    after = tree(ws)
    written = {k for k in set(after) | set(before) if after.get(k) != before.get(k)
               and k != "export" and not k.startswith("export/")}
    if kind == "valid":
        if rc not in (0, 1) or e:
            tally.wrong.append(f"{where}: exit {rc}, stderr {e[:200]!r}")
        if written:
            tally.wrong.append(f"{where}: wrote outside the export folder: {sorted(written)[:3]}")
    else:
        if rc != 2 or o or not e.startswith("hotmem: error: ") or e.count("\n") != 1 \
                or len(e.rstrip("\n")) >= 300 or "Traceback" in e:
            tally.wrong.append(f"{where}: exit {rc}, stderr {e[:200]!r}, stdout {o[:80]!r}")
        if after != before:
            tally.wrong.append(f"{where}: a refused file wrote "
                               f"{sorted(set(after) ^ set(before))[:3]}")
    if export.exists():
        import shutil
        shutil.rmtree(export)


def run_file(kind: str, content: bytes, tally: Tally, label: str, modes=MODES) -> None:
    tally.files += 1
    tally.by_class[kind] = tally.by_class.get(kind, 0) + 1
    with tempfile.TemporaryDirectory(prefix="hotmem-fuzz-") as ws:
        for mode in modes:
            run_one(Path(ws), content, kind, mode, tally, label)


def figures(t: Tally) -> str:
    return (f"{t.files} files ({t.files - t.by_class.get('valid', 0)} malformed), {t.runs} runs: "
            f"{len(t.tracebacks)} tracebacks, {len(t.hangs)} hangs, {len(t.blowups)} memory "
            f"blow-ups, {len(t.wrong)} wrong exits/messages/writes; slowest run "
            f"{t.slowest[0]:.1f} s ({t.slowest[1]}); {t.seconds:.0f} s")


def campaign(files: int, seed: int = 0, valid_every: int = 0, progress: int = 0) -> Tally:
    """``files`` malformed files (and one valid file every ``valid_every``)."""
    t = Tally()
    t0 = time.monotonic()
    for i in range(files):
        d = RandDraw(seed + i)
        run_file(*malformed(d), t, f"seed {seed + i}")
        if valid_every and i % valid_every == 0:
            run_file(*valid(RandDraw(-(seed + i) - 1)), t, f"valid seed {-(seed + i) - 1}")
        if progress and (i + 1) % progress == 0:
            t.seconds = time.monotonic() - t0
            print(f"{i + 1} files: " + figures(t), file=sys.stderr, flush=True)
    t.seconds = time.monotonic() - t0
    return t


# ---------------------------------------------------------------- the tests

def _settings(short: int, long: int):
    return settings(max_examples=long if LONG else short, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


@_settings(short=60, long=5000)
@given(st.data())
def test_malformed_files_exit_2_with_one_line(data):
    t = Tally()
    run_file(*malformed(HypDraw(data)), t, "hypothesis")
    assert t.problems() == []


@_settings(short=12, long=500)
@given(st.data())
def test_valid_files_run(data):
    t = Tally()
    run_file(*valid(HypDraw(data)), t, "hypothesis")
    assert t.problems() == []


def test_every_class_is_generated():
    """The seeded generator reaches every class of the issue in 400 files."""
    kinds = {malformed(RandDraw(i))[0] for i in range(400)}
    assert kinds == {"binary", "utf16", "deep", "empty", "digits", "op", "blocks", "seed",
                     "kernel", "nonascii", "hugename", "machine", "step", "runtime", "combo",
                     "toml", "shape", "oversize", "unknown"}


def test_the_checks_can_fail(monkeypatch):
    """A main that lets an exception through, or prints two lines, is caught."""
    import hotmem.cli as cli
    t = Tally()
    with tempfile.TemporaryDirectory() as ws:
        monkeypatch.setattr(cli, "load_scenario", lambda p, **kw: 1 // 0)
        run_one(Path(ws), b"[machine]\n", "empty", "run", t, "x")
        assert len(t.tracebacks) == 1 and "ZeroDivisionError" in t.tracebacks[0]

        def two_lines(p, **kw):
            from hotmem.errors import ConfigError
            raise ConfigError("one\ntwo")
        monkeypatch.setattr(cli, "load_scenario", two_lines)
        monkeypatch.setattr(cli, "clip", lambda s, n: s)
        run_one(Path(ws), b"[machine]\n", "empty", "run", t, "x")
        assert len(t.wrong) == 1


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(description="count tracebacks, hangs and blow-ups")
    p.add_argument("--files", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--valid-every", type=int, default=10)
    a = p.parse_args()
    tally = campaign(a.files, a.seed, a.valid_every, progress=250)
    print(figures(tally))
    print("classes:", json.dumps(dict(sorted(tally.by_class.items()))))
    for x in tally.problems()[:30]:
        print("problem:", x)
    sys.exit(1 if tally.problems() else 0)
