"""Scenario files: a machine and a list of steps, in TOML.

    [machine]
    arch = "x86_64"
    kernel = "6.12"
    boot_memory = "4G"
    memmap_on_memory = "y"

    [[step]]
    op = "add"
    size = "1G"

Every key is checked; a mistake is reported with the step number and key.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, HotplugError
from .constants import MEM_OFFLINE, MEM_ONLINE
from .machine import Machine
from .drivers import make_device
from .snapshot import machine_from_file
from .units import parse_addr, parse_size

MACHINE_KEYS = {
    "arch": str, "kernel": (str, int), "boot_memory": (str, int), "memmap_on_memory": (str, bool, int),
    "online_policy": str, "auto_movable_ratio": int, "auto_online_blocks": str,
    "on_error": str, "design": str, "block_size": (str, int), "nodes": int,
    "movable_node": bool, "hypervisor": bool, "max_memory": (str, int), "thp": bool,
    "auto_movable_numa_aware": bool, "rfc_alignment_fix": bool, "rfc_refuse_hazard": bool,
    "snapshot": str,
}
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

    def build_machine(self, **overrides) -> Machine:
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
            raise ConfigError(f"{self.source}: [machine]: {err}") from None


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


def parse_scenario(data: dict, source: str = "<scenario>") -> Scenario:
    """Validate a parsed TOML document."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a TOML table")
    unknown = set(data) - {"machine", "step", "device"}
    if unknown:
        raise _fail(source, "top level", f"unknown section(s) {sorted(unknown)}; "
                    "expected [machine], [[device]] and [[step]]")
    devices = _parse_devices(source, data.get("device", []))
    machine = data.get("machine", {})
    if not isinstance(machine, dict):
        raise _fail(source, "[machine]", "must be a table")
    for key, value in machine.items():
        if key not in MACHINE_KEYS:
            raise _fail(source, "[machine]", f"unknown key {key!r}; known: "
                        f"{', '.join(sorted(MACHINE_KEYS))}")
        if not isinstance(value, MACHINE_KEYS[key]):
            raise _fail(source, f"[machine] {key}", f"unexpected value {value!r}")
    machine = dict(machine)
    on_error = machine.pop("on_error", "stop")
    if on_error not in ("stop", "continue"):
        raise _fail(source, "[machine] on_error", f"{on_error!r} is not stop or continue")
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list):
        raise _fail(source, "step", "use [[step]] tables")
    steps = []
    for i, raw in enumerate(raw_steps):
        where = f"step {i}"
        if not isinstance(raw, dict):
            raise _fail(source, where, "must be a table")
        op = raw.get("op")
        if op not in STEP_KEYS:
            raise _fail(source, where, f"op {op!r} is not one of {', '.join(STEP_KEYS)}")
        extra = set(raw) - COMMON_STEP_KEYS - STEP_KEYS[op]
        if extra:
            raise _fail(source, f"{where} ({op})", f"unknown key(s) {sorted(extra)}; "
                        f"{op} takes {', '.join(sorted(STEP_KEYS[op]))}")
        args = {k: v for k, v in raw.items() if k in STEP_KEYS[op]}
        _check_step(source, where, op, args)
        if op in ("attach", "resize", "detach", "set") and args.get("device") not in devices:
            raise _fail(source, f"{where} ({op})", f"device {str(args.get('device'))[:40]!r} is "
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


def _check_step(src: str, where: str, op: str, args: dict) -> None:
    try:
        if op in ("add", "remove"):
            if op == "remove" and ("start" not in args or "size" not in args):
                raise ConfigError("remove needs start and size")
            if "size" in args:
                parse_size(args["size"], "size")
            elif op == "add":
                raise ConfigError("add needs a size")
            if "start" in args:
                parse_addr(args["start"], "start")
        if op in ("online", "offline"):
            sel = args.get("blocks")
            if sel is None:
                raise ConfigError(f"{op} needs blocks (a list of ids, \"offline\", "
                                  "\"online\" or a range \"32-39\")")
            _block_selector(sel)
        if op == "set" and ("key" not in args or "value" not in args):
            raise ConfigError("set needs key and value (a device attribute)")
        if op == "resize":
            if "size" not in args:
                raise ConfigError("resize needs a size")
            parse_size(args["size"], "size")
        if op == "alloc" and "pages" not in args:
            raise ConfigError("alloc needs pages")
        for key in ("pages", "seed", "node"):
            if key in args and key != "pages" and not isinstance(args[key], int):
                raise ConfigError(f"{key} must be a whole number")
    except ConfigError as err:
        raise _fail(src, f"{where} ({op})", str(err)) from None


def _block_selector(sel) -> Callable[[Machine], list[int]]:
    if isinstance(sel, list):
        if not all(isinstance(b, int) and not isinstance(b, bool) for b in sel):
            raise ConfigError(f"blocks: {sel!r} must be whole numbers")
        return lambda m: list(sel)
    if isinstance(sel, int) and not isinstance(sel, bool):
        return lambda m: [sel]
    if sel == "offline":
        return lambda m: [int(b) for b in m.blocks_in_state(MEM_OFFLINE)]
    if sel == "online":
        # hot-added blocks only: boot memory is not what a scenario offlines
        return lambda m: [int(b) for b in m.blocks_in_state(MEM_ONLINE) if not m.blk_early[b]]
    if isinstance(sel, str) and "-" in sel:
        lo, _, hi = sel.partition("-")
        if lo.strip().isdigit() and hi.strip().isdigit() and int(lo) <= int(hi):
            return lambda m: list(range(int(lo), int(hi) + 1))
    raise ConfigError(f"blocks: {sel!r} is not a list of ids, \"offline\", \"online\" or "
                      "a range such as \"32-39\"")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    return loads_scenario(text, str(path))


def loads_scenario(text: str, source: str = "<scenario>") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    return parse_scenario(data, source)


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
            res.blocks = list(range(s // m.block_size, (s + e) // m.block_size))
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
                 **overrides) -> tuple[Machine, list[StepResult]]:
    """Build the machine and run every step; stops at the first failed step
    when on_error = "stop".  ``on_step`` sees the machine after each step."""
    m = machine if machine is not None else sc.build_machine(**overrides)
    specs = {k: dict(v) for k, v in sc.devices.items()}   # this run's device attributes
    results = []
    for step in sc.steps:
        res = run_step(m, step, sc.on_error, specs)
        results.append(res)
        if on_step is not None:
            on_step(m, res)
        if not res.ok and sc.on_error == "stop":
            break
    return m, results
