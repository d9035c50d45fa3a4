"""Scenario files: a machine and a list of steps, in TOML.

    [machine]
    arch = "x86_64"
    kernel = "6.12"
    boot_memory = "4G"
    memmap_on_memory = "y"

    [[step]]
    op = "add"
    size = "1G"

Every key is checked before anything runs; a mistake is reported as
``FILE: [machine] KEY: ...`` or ``FILE: step N (OP) KEY: ...``, on one line,
with the value shortened.  A file must be UTF-8 TOML of at most 4 MiB and
hold a [machine] table or at least one [[step]]: an empty file is refused
rather than run as the default machine.
"""
from __future__ import annotations

import errno as _errno
import os
import stat
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .arch import ALIASES, ARCHES
from .constants import MEM_OFFLINE, MEM_ONLINE, MEMMAP_MODES, ONLINE_TYPES
from .designs import NAMES as DESIGN_NAMES
from .drivers import make_device
from .errors import ConfigError, HotplugError
from .kernel import Kernel
from .machine import Machine
from .snapshot import machine_from_file
from .units import parse_addr, parse_size
from .validate import (
    MAX_COUNT,
    U64,
    check_block_ids,
    check_int,
    check_remove_range,
    clip,
    is_int,
    short,
)

# the TOML types each [machine] key takes
_Kinds = type | tuple[type, ...]
MACHINE_KEYS: dict[str, _Kinds] = {
    "arch": str, "kernel": (str, int), "boot_memory": (str, int),
    "memmap_on_memory": (str, bool, int),
    "online_policy": str, "auto_movable_ratio": int, "auto_online_blocks": str,
    "on_error": str, "design": str, "block_size": (str, int), "nodes": int,
    "movable_node": bool, "hypervisor": bool, "max_memory": (str, int), "thp": bool,
    "auto_movable_numa_aware": bool, "rfc_alignment_fix": bool, "rfc_refuse_hazard": bool,
    "snapshot": str,
}
# the largest scenario file read; more is refused before it is parsed
MAX_FILE_BYTES = 4 << 20
MAX_NODES = 64
# no arch has more memory blocks than its physical address space in sections
MAX_BLOCK_ID = max((1 << a.max_physmem_bits) >> a.section_size_bits for a in ARCHES.values()) - 1
ONLINE_STEP_TYPES = ("online", "online_kernel", "online_movable")
COMMON_STEP_KEYS = {"op", "capture", "expect", "note"}
STEP_KEYS = {
    "add": {"size", "start", "node", "driver"},
    "online": {"blocks", "type"},
    "offline": {"blocks"},
    "remove": {"start", "size"},
    "alloc": {"zone", "pages", "kind", "seed", "placement", "node"},
    "free": {"zone", "pages", "kind", "seed", "node"},
    # devices of [[device]] tables, through their drivers
    "attach": {"device"},
    "resize": {"device", "size"},
    "detach": {"device"},
    "set": {"device", "key", "value"},
}


@dataclass
class Step:
    """One step of a scenario."""

    index: int
    op: str
    args: dict[str, Any]
    capture: str | None = None
    expect: str | None = None

    @property
    def label(self) -> str:
        return f"{self.index:02d}-{self.op}"


@dataclass
class Scenario:
    machine: dict[str, Any]
    steps: list[Step]
    on_error: str = "stop"
    source: str = "<scenario>"
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)

    def build_machine(self, **overrides: object) -> Machine:
        """The scenario's machine; an error names the [machine] key it is about."""
        kw = dict(self.machine)
        kw.update(overrides)
        if kw.get("snapshot") is not None:
            # the machine comes from the snapshot: no other [machine] key
            other = sorted(set(kw) - {"snapshot"})
            if other:
                raise ConfigError(f"{self.source}: [machine]: {', '.join(other)}: the machine "
                                  "comes from the snapshot; leave these out")
            path = Path(kw["snapshot"])
            if not path.is_absolute() and self.source not in ("<scenario>", "<empty>"):
                path = Path(self.source).parent / path
            return machine_from_file(path)
        kw.pop("snapshot", None)
        if "nodes" in kw:
            kw["nr_nodes"] = kw.pop("nodes")
        try:
            return Machine(**kw)
        except TypeError as err:  # a key Machine does not take
            raise ConfigError(f"{self.source}: [machine]: {clip(str(err), 160)}") from None
        except ConfigError as err:
            raise ConfigError(f"{self.source}: [machine] {_keyed(clip(str(err), 240))}") from None


# keys of errors Machine() raises that do not start with their key
_MACHINE_ERROR_KEYS = (("nr_nodes", "nodes"), ("memmap_on_memory=", "memmap_on_memory"),
                       ("design ", "design"), ("boot memory ends beyond", "max_memory"),
                       ("boot_memory ", "boot_memory"), ("unknown arch", "arch"))


def _keyed(msg: str) -> str:
    """A Machine() error as "KEY: message"."""
    key = msg.split(":", 1)[0]
    if key in MACHINE_KEYS:
        return msg
    for start, key in _MACHINE_ERROR_KEYS:
        if msg.startswith(start):
            return f"{key}: {msg}"
    return f"(machine): {msg}"


@dataclass
class StepResult:
    step: Step
    ok: bool
    errno: str | None = None
    message: str = ""
    blocks: list[int] = field(default_factory=list)
    outcomes: list[tuple[int, str]] = field(default_factory=list)  # (block, "ok"/errno)

    @property
    def result(self) -> str:
        return "ok" if self.ok else self.errno or "error"

    @property
    def expected_ok(self) -> bool:
        return self.step.expect is None or self.step.expect == self.result


def _fail(src: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{src}: {where}: {msg}")


def _check_machine_key(key: str, value: object) -> None:
    """One [machine] value, alone; combinations are Machine()'s to check."""
    kinds = MACHINE_KEYS[key]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ConfigError(f"{short(value)} is not a {_kind_name(kinds)}")
    if not isinstance(value, kinds):
        raise ConfigError(f"{short(value)} is not a {_kind_name(kinds)}")
    # value is of one of kinds from here on
    if key == "arch" and isinstance(value, str) and ALIASES.get(value, value) not in ARCHES:
        raise ConfigError(f"unknown arch {short(value)}; known: {', '.join(sorted(ARCHES))}")
    if key == "kernel":
        Kernel.parse(value)
    if key in ("boot_memory", "block_size", "max_memory"):
        parse_size(value, key)
    if key == "memmap_on_memory":
        mode: str | None = None
        if isinstance(value, bool):
            mode = "y" if value else "n"
        elif isinstance(value, int):
            mode = {0: "n", 1: "y"}.get(value)
        elif isinstance(value, str) and len(value) <= 8:
            mode = value.lower()
        if mode not in MEMMAP_MODES + ("0", "1", "false", "true", "no", "yes"):
            raise ConfigError(f"{short(value)} is not n, y or force")
    if key == "online_policy" and value not in ("contig-zones", "auto-movable"):
        raise ConfigError(f"{short(value)} is not contig-zones or auto-movable")
    if key == "auto_movable_ratio":
        check_int(value, key, 0, (1 << 32) - 1)       # an unsigned int module parameter
    if key == "auto_online_blocks" and value not in ONLINE_TYPES:
        raise ConfigError(f"{short(value)} is not one of {', '.join(ONLINE_TYPES)}")
    if key == "on_error" and value not in ("stop", "continue"):
        raise ConfigError(f"{short(value)} is not stop or continue")
    if key == "design" and value not in DESIGN_NAMES and ":" not in str(value):
        raise ConfigError(f"{short(value)} is not one of {', '.join(DESIGN_NAMES)} "
                          "(or module:attribute)")
    if key == "nodes":
        check_int(value, key, 1, MAX_NODES)


def _did_you_mean(key: str, known: Iterable[str]) -> str:
    """A hint for a misspelt key, or the list of keys: short either way."""
    import difflib
    close = difflib.get_close_matches(key[:64], sorted(known), n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return "; known: " + clip(", ".join(sorted(known)), 160)


def _kind_name(kinds: _Kinds) -> str:
    names = {str: "string", int: "whole number", bool: "boolean"}
    return " or ".join(names[k] for k in (kinds if isinstance(kinds, tuple) else (kinds,)))


def _strip_key(key: str, msg: str) -> str:
    """"KEY: message" as "message": the prefix already names the key."""
    return msg[len(key) + 2:] if msg.startswith(key + ": ") else msg


def parse_scenario(data: dict[str, Any], source: str = "<scenario>",
                   allow_empty: bool = False) -> Scenario:
    """Validate a parsed TOML document (empty only with ``allow_empty``: the
    steps run on a machine that comes from elsewhere, a snapshot)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a TOML table")
    unknown = set(data) - {"machine", "step", "device"}
    if unknown:
        raise _fail(source, "top level", f"unknown section(s) {short(sorted(unknown))}; "
                    "expected [machine], [[device]] and [[step]]")
    if not data and not allow_empty:
        raise _fail(source, "top level", "empty: a scenario needs a [machine] table or at "
                    "least one [[step]]")
    devices = _parse_devices(source, data.get("device", []))
    machine = data.get("machine", {})
    if not isinstance(machine, dict):
        raise _fail(source, "[machine]", "must be a table")
    for key, value in machine.items():
        if key not in MACHINE_KEYS:
            raise _fail(source, "[machine]",
                        f"unknown key {short(key)}{_did_you_mean(key, MACHINE_KEYS)}")
        try:
            _check_machine_key(key, value)
        except ConfigError as err:
            raise _fail(source, f"[machine] {key}", _strip_key(key, str(err))) from None
    machine = dict(machine)
    on_error = machine.pop("on_error", "stop")
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list):
        raise _fail(source, "step", "use [[step]] tables")
    nodes = machine.get("nodes", 1)
    steps = []
    for i, raw in enumerate(raw_steps):
        where = f"step {i}"
        if not isinstance(raw, dict):
            raise _fail(source, where, "must be a table")
        op = raw.get("op")
        if not isinstance(op, str) or op not in STEP_KEYS:
            raise _fail(source, f"{where} op", f"{short(op)} is not one of {', '.join(STEP_KEYS)}")
        extra = set(raw) - COMMON_STEP_KEYS - STEP_KEYS[op]
        if extra:
            raise _fail(source, f"{where} ({op})", f"unknown key(s) {short(sorted(extra))}; "
                        f"{op} takes {', '.join(sorted(STEP_KEYS[op] | COMMON_STEP_KEYS))}")
        args = {k: v for k, v in raw.items() if k in STEP_KEYS[op]}
        common = {k: v for k, v in raw.items() if k in COMMON_STEP_KEYS and k != "op"}
        _check_step(source, where, op, args, common, nodes if isinstance(nodes, int) else 1)
        if op in ("attach", "resize", "detach", "set") and args.get("device") not in devices:
            raise _fail(source, f"{where} ({op})", f"device {short(args.get('device'))} is "
                        f"not a [[device]] of this scenario ({', '.join(devices) or 'none'})")
        steps.append(Step(i, op, args, capture=raw.get("capture"), expect=raw.get("expect")))
    return Scenario(machine, steps, on_error, source, devices)


def _parse_devices(source: str, raw: object) -> dict[str, dict[str, Any]]:
    """[[device]] tables by name, each checked by building it once."""
    if not isinstance(raw, list):
        raise _fail(source, "device", "use [[device]] tables")
    out: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(raw):
        where = f"device {i}"
        if not isinstance(spec, dict):
            raise _fail(source, where, "must be a table")
        try:
            dev = make_device(spec)
        except ConfigError as err:
            raise _fail(source, where, str(err)) from None
        if dev.name in out:
            raise _fail(source, where, f"a second device named {dev.name!r}")
        out[dev.name] = dict(spec)
    return out


def _check_step(src: str, where: str, op: str, args: dict[str, Any], common: dict[str, Any],
                nodes: int) -> None:
    key: str | None = None
    try:
        for key, value in common.items():
            if not isinstance(value, str):
                raise ConfigError(f"{short(value)} is not a string")
            if key == "expect" and value != "ok" and not (
                    value.isascii() and value.isupper() and hasattr(_errno, value)):
                raise ConfigError(f"{short(value)} is not \"ok\" or an errno name (EBUSY, ...)")
        key = None
        if op in ("add", "remove"):
            if op == "remove" and ("start" not in args or "size" not in args):
                raise ConfigError("remove needs start and size")
            if "size" not in args and op == "add":
                raise ConfigError("add needs a size")
            for key in ("size", "start"):
                if key in args:
                    parse_size(args[key], key)
            key = "driver"
            if op == "add" and "driver" in args and args["driver"] not in ("acpi", "direct"):
                raise ConfigError(f"{short(args['driver'])} is not acpi or direct")
        if op in ("online", "offline"):
            key = "blocks"
            sel = args.get("blocks")
            if sel is None:
                key = None
                raise ConfigError(f"{op} needs blocks (a list of ids, \"offline\", "
                                  "\"online\" or a range \"32-39\")")
            _block_selector(sel)
            key = "type"
            if "type" in args and args["type"] not in ONLINE_STEP_TYPES:
                raise ConfigError(f"{short(args['type'])} is not one of "
                                  f"{', '.join(ONLINE_STEP_TYPES)}")
        key = None
        if op in ("attach", "resize", "detach", "set"):
            key = "device"
            if not isinstance(args.get("device"), str):
                raise ConfigError(f"{op} needs device, the name of a [[device]]")
        if op == "set":
            key = None
            if "key" not in args or "value" not in args:
                raise ConfigError("set needs key and value (a device attribute)")
            key = "key"
            if not isinstance(args["key"], str):
                raise ConfigError(f"{short(args['key'])} is not an attribute name")
        if op == "resize":
            key = None
            if "size" not in args:
                raise ConfigError("resize needs a size")
            key = "size"
            parse_size(args["size"], "size")
        key = None
        if op == "alloc" and "pages" not in args:
            raise ConfigError("alloc needs pages")
        key = "pages"
        if "pages" in args and not (op == "free" and args["pages"] == "all"):
            check_int(args["pages"], "pages", 1, MAX_COUNT)
        key = "seed"
        if "seed" in args:
            check_int(args["seed"], "seed", 0, U64 - 1)
        key = "node"
        if "node" in args:
            # add: an impossible node is the kernel's EINVAL; alloc and free
            # are hotmem's own and take only the machine's nodes
            nid = check_int(args["node"], "node", 0, MAX_NODES - 1)
            if op != "add" and nid >= nodes:
                raise ConfigError(f"{nid} is not a node of the machine (nodes = {nodes})")
        for key, allowed in (("kind", ("movable", "unmovable")),
                             ("placement", ("lowest", "random", "kernel"))):
            if key in args and args[key] not in allowed:
                raise ConfigError(f"{short(args[key])} is not one of {', '.join(allowed)}")
        key = "zone"
        if "zone" in args and (not isinstance(args["zone"], str) or len(args["zone"]) > 16):
            raise ConfigError(f"{short(args['zone'])} is not a zone name (DMA, Normal, ...)")
    except ConfigError as err:
        msg = str(err)
        raise _fail(src, f"{where} ({op})" + (f" {key}" if key else ""),
                    _strip_key(key, msg) if key else msg) from None


def _block_selector(sel: object) -> Callable[[Machine], list[int]]:
    """What ``blocks`` selects, as a function of the machine; ids a machine
    can never have (beyond its address space) are refused before a list of
    them is built."""
    if isinstance(sel, list):
        if not sel or not all(is_int(b) for b in sel):
            raise ConfigError(f"blocks: {short(sel)} must be a list of whole numbers")
        lo, hi = min(sel), max(sel)
        if lo < 0 or hi > MAX_BLOCK_ID:
            raise ConfigError(f"blocks: {short(lo if lo < 0 else hi)} is not a block id "
                              f"(0 .. {MAX_BLOCK_ID})")

        def listed(m: Machine) -> list[int]:
            check_block_ids(m, lo, hi)
            return list(sel)
        return listed
    if is_int(sel):
        return _block_selector([sel])
    if sel == "offline":
        return lambda m: [int(b) for b in m.blocks_in_state(MEM_OFFLINE)]
    if sel == "online":
        # hot-added blocks only: boot memory is not what a scenario offlines
        return lambda m: [int(b) for b in m.blocks_in_state(MEM_ONLINE) if not m.blk_early[b]]
    if isinstance(sel, str) and len(sel) <= 40:
        lo, sep, hi = sel.strip(" \t").partition("-")
        lo, hi = lo.strip(" \t"), hi.strip(" \t")
        if (sep and 0 < len(lo) <= 20 and 0 < len(hi) <= 20 and lo.isascii() and lo.isdigit()
                and hi.isascii() and hi.isdigit() and int(lo) <= int(hi)):
            first, last = int(lo), int(hi)
            if last > MAX_BLOCK_ID:
                raise ConfigError(f"blocks: {short(sel)} goes beyond any machine's blocks "
                                  f"(0 .. {MAX_BLOCK_ID})")

            def ranged(m: Machine) -> list[int]:
                check_block_ids(m, first, last)
                return list(range(first, last + 1))
            return ranged
    raise ConfigError(f"blocks: {short(sel)} is not a list of ids, \"offline\", \"online\" or "
                      "a range such as \"32-39\"")


def load_scenario(path: str | Path, allow_empty: bool = False) -> Scenario:
    """Read and validate a scenario file (a regular file of at most 4 MiB)."""
    path = Path(path)
    name = clip(str(path), 120)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError(f"{name}: not a regular file")
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{name}: cannot read: {err.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_FILE_BYTES >> 20} MiB; not a scenario")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{name}: not UTF-8 text (byte {err.start}: "
                          f"{raw[err.start:err.start + 1]!r})") from None
    return loads_scenario(text, name, allow_empty)


def loads_scenario(text: str, source: str = "<scenario>", allow_empty: bool = False) -> Scenario:
    if len(text) > MAX_FILE_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_FILE_BYTES >> 20} MiB; not a scenario")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {clip(str(err), 120)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: arrays or tables nested too "
                          "deeply") from None
    except ValueError:   # an integer of more digits than int() converts (4300)
        raise ConfigError(f"{source}: not valid TOML: a number of thousands of "
                          "digits") from None
    return parse_scenario(data, source, allow_empty)


def default_scenario_text() -> str:
    """The scenario shipped with hotmem (``hotmem run`` without a file)."""
    return resources.files("hotmem").joinpath("scenarios/default.toml").read_text()


def run_step(m: Machine, step: Step, on_error: str = "stop",
             devices: dict[str, dict[str, Any]] | None = None) -> StepResult:
    """Apply one step; multi-block steps go block by block like a shell loop.
    ``devices`` are the scenario's [[device]] tables (attach builds one)."""
    a = step.args
    res = StepResult(step, ok=True)
    try:
        if step.op == "add":
            res.blocks = m.add(a.get("start"), a["size"], nid=a.get("node", 0),
                               driver=a.get("driver", "acpi"))
        elif step.op == "remove":
            s, e = parse_addr(a["start"]), parse_size(a["size"])
            bs = m.block_size
            if e and not s % bs and not e % bs:
                check_remove_range(m, s, e)     # before any list of its blocks
            res.blocks = list(range(s // bs, (s + e) // bs)) if s + e <= m.max_phys else []
            m.remove(a["start"], a["size"])
        elif step.op in ("online", "offline"):
            res.blocks = _block_selector(a["blocks"])(m)
            stop = on_error == "stop"
            if step.op == "online":
                done = m.online_blocks(res.blocks, a.get("type", "online"), stop_on_error=stop)
            else:
                done = m.offline_blocks(res.blocks, stop_on_error=stop)
            for blk, err in done:
                res.outcomes.append((blk, "ok" if err is None else err.errno))
                if err is not None and res.ok:
                    res.ok, res.errno, res.message = False, err.errno, err.message
        elif step.op == "alloc":
            m.alloc(a["pages"], kind=a.get("kind", "movable"), zone=a.get("zone"),
                    placement=a.get("placement", "random"), seed=a.get("seed", 0),
                    nid=a.get("node", 0))
        elif step.op == "attach":
            res.blocks = m.attach(make_device((devices or {})[a["device"]]))
        elif step.op == "resize":
            res.blocks = m.resize(a["device"], parse_size(a["size"]))
        elif step.op == "detach":
            res.blocks = m.detach(a["device"])
        elif step.op == "set":
            if a["device"] in m.devices:
                m.set(a["device"], a["key"], a["value"])
            else:
                # before attach: the attribute of the device as it will bind
                spec = (devices or {})[a["device"]]
                make_device(spec).set(m, a["key"], a["value"])
                spec[a["key"]] = a["value"]
        elif step.op == "free":
            m.free(a.get("pages"), kind=a.get("kind", "movable"), zone=a.get("zone"),
                   seed=a.get("seed", 0), nid=a.get("node", 0))
    except HotplugError as err:
        res.ok, res.errno, res.message = False, err.errno, err.message
    return res


def run_scenario(sc: Scenario, machine: Machine | None = None,
                 on_step: Callable[[Machine, StepResult], None] | None = None,
                 **overrides: object) -> tuple[Machine, list[StepResult]]:
    """Build the machine and run every step; stops at the first failed step
    when on_error = "stop".  ``on_step`` sees the machine after each step."""
    m = machine if machine is not None else sc.build_machine(**overrides)
    specs = {k: dict(v) for k, v in sc.devices.items()}   # this run's device attributes
    results = []
    for step in sc.steps:
        try:
            res = run_step(m, step, sc.on_error, specs)
        except ConfigError as err:
            # what only the machine can tell: a zone it lacks, a node it lacks
            msg = str(err)
            if msg.startswith(f"{step.op}: "):
                msg = msg[len(step.op) + 2:]
            key = msg.split(":", 1)[0]
            sep = " " if key in step.args or key == "blocks" else ": "
            raise ConfigError(f"{sc.source}: step {step.index} ({step.op}){sep}"
                              f"{clip(msg, 200)}") from None
        results.append(res)
        if on_step is not None:
            on_step(m, res)
        if not res.ok and sc.on_error == "stop":
            break
    return m, results
