"""Sizing answers found by running the engine, never by formula.

Each answer comes with the scenarios that prove it: one that succeeds at the
answer and one that fails a memory block above it, both runnable with
``hotmem run`` (``--proofs DIR`` writes them).

- largest single hot-add: the largest ``add`` of one device that add_memory()
  accepts on a fresh machine, per memmap_on_memory mode (n, y);
- largest total growth: hot-adds one after another on the same machine, each
  the largest that still succeeds, until not one more block can be added;
- target settings (``--target SIZE``): every combination of memmap_on_memory,
  block size, online policy and ratio and auto-online type under which the
  target hot-add comes up (every block online) and stays offlinable (every
  block offlines again after the load), ranked by memory lost to memmap;
- offlinable now (``--scenario FILE``, or the plan's machine as it boots):
  every online block, and the errno and reason of those an offline refuses.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, NotRequired, Required, TypedDict, TypeVar, overload

from .constants import MemmapMode, OnlinePolicy, OnlineType
from .errors import ConfigError
from .machine import Machine
from .scenario import Scenario, StepResult, parse_scenario, run_scenario
from .units import fmt_size, parse_size

# the memmap_on_memory modes every answer is found for
Mode = Literal["n", "y"]
MODES: Final[tuple[Mode, ...]] = ("n", "y")
ONLINE_TYPES: Final[tuple[OnlineType, ...]] = ("online", "online_kernel", "online_movable")
# auto_movable_ratio values tried with the auto-movable policy: the kernel's
# default (301) and one that lets all of a large DIMM be movable
RATIOS: Final = (301, 3000)
BLOCK_SIZES: Final = ("128M", "256M", "512M", "1G", "2G")
MAX_ROUNDS: Final = 16


class PlanMachine(TypedDict, total=False):
    """The [machine] keys the plan sets (sizes as the options give them)."""

    arch: Required[str]
    kernel: Required[str]
    boot_memory: Required[str | int]
    block_size: str | int
    online_policy: OnlinePolicy
    auto_movable_ratio: int
    auto_online_blocks: OnlineType
    max_memory: str | int
    memmap_on_memory: MemmapMode


class Settings(TypedDict):
    """One combination the target question varies."""

    memmap_on_memory: MemmapMode
    block_size: str
    online_policy: OnlinePolicy
    auto_online_blocks: OnlineType
    auto_movable_ratio: NotRequired[int]  # with the auto-movable policy only


class ScenarioMachine(PlanMachine, total=False):
    on_error: Literal["stop", "continue"]


class StepTable(TypedDict, total=False):
    """A [[step]] of the scenarios the plan runs: add, alloc or offline."""

    op: Required[Literal["add", "alloc", "offline"]]
    size: int | str
    kind: Literal["unmovable"]
    pages: int
    seed: int
    blocks: Literal["online"]


class ScenarioTable(TypedDict):
    """A scenario as parsed TOML, as ``hotmem run`` reads it."""

    machine: ScenarioMachine
    step: list[StepTable]


class ProbeJson(TypedDict):
    machine: PlanMachine
    adds_bytes: list[int]
    result: str
    message: str
    scenario: str


class AnswerJson(TypedDict):
    bytes: int
    complete: bool
    succeeds: ProbeJson
    fails: ProbeJson | None


class TrialJson(TypedDict):
    settings: Settings
    comes_up: bool
    stays_offlinable: bool
    memmap_bytes: int
    memmap_in_boot_memory_bytes: int
    why_not: str | None
    scenario: str


class TargetJson(TypedDict):
    bytes: int
    load_pages: int
    settings: list[TrialJson]


class Refusal(TypedDict):
    block: int
    errno: str
    reason: str
    early: bool


class Offlinable(TypedDict):
    offlinable: list[int]
    refused: list[Refusal]


class OfflinableNow(Offlinable):
    source: str                           # the scenario file, or "boot"


class Proofs(TypedDict):
    largest_single_add: dict[Mode, AnswerJson]
    largest_total_growth: dict[Mode, AnswerJson]


class Answers(TypedDict):
    single: dict[Mode, Answer]
    growth: dict[Mode, Answer]


class PlanHead(TypedDict):
    machine: PlanMachine
    largest_single_add: dict[Mode, int]
    largest_total_growth: dict[Mode, int]
    proofs: Proofs
    target: NotRequired[TargetJson]        # with a target size only


class Plan(PlanHead):
    """make_plan's answer, keys in this order: ``hotmem plan --json`` prints
    all but _answers."""

    offlinable_now: OfflinableNow
    _answers: Answers


def size_str(n: int) -> str:
    """Bytes as a sum of whole units, largest first: 131068G+128M."""
    parts = []
    for shift, unit in ((40, "T"), (30, "G"), (20, "M"), (10, "K"), (0, "")):
        q, n = divmod(n, 1 << shift)
        if q:
            parts.append(f"{q}{unit}")
    return "+".join(parts) or "0"


@dataclass
class Probe:
    """One proof: a scenario and how its last step ended."""

    machine: PlanMachine
    adds: list[int]                       # sizes of the add steps, in bytes
    result: str = ""                      # "ok" or the errno name of the last step
    message: str = ""

    def toml(self) -> str:
        lines = ["[machine]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in self.machine.items()]
        for size in self.adds:
            lines += ["", "[[step]]", 'op = "add"', f'size = "{fmt_size(size)}"']
        if self.result != "ok":
            lines.append(f'expect = "{self.result}"')
        return "\n".join(lines) + "\n"

    def line(self) -> str:
        adds = " + ".join(size_str(s) for s in self.adds)
        tail = "ok" if self.result == "ok" else f"{self.result}: {self.message}"
        return f"add {adds}: {tail}"

    def as_json(self) -> ProbeJson:
        return {"machine": self.machine, "adds_bytes": self.adds, "result": self.result,
                "message": self.message, "scenario": self.toml()}


@dataclass
class Answer:
    """A size found by search, with the scenario at it and one block above."""

    bytes: int
    succeeds: Probe
    fails: Probe | None                   # None: the search stopped still growing

    def as_json(self) -> AnswerJson:
        return {"bytes": self.bytes, "complete": self.fails is not None,
                "succeeds": self.succeeds.as_json(),
                "fails": self.fails.as_json() if self.fails is not None else None}


def _scenario(machine: PlanMachine, adds: list[int]) -> Scenario:
    data: ScenarioTable = {"machine": {**machine, "on_error": "stop"},
                           "step": [{"op": "add", "size": s} for s in adds]}
    return _parse(data)


def _parse(data: ScenarioTable) -> Scenario:
    # parse_scenario takes any parsed TOML, typed as a plain dict
    return parse_scenario(dict(data), "<plan>")


def probe(machine: PlanMachine, adds: list[int]) -> Probe:
    """Run the adds in order; the probe's result is the last step's."""
    _, results = run_scenario(_scenario(machine, adds))
    p = Probe(machine.copy(), list(adds))
    last = results[-1]
    if len(results) < len(adds):          # an earlier add failed: not a valid prefix
        raise AssertionError(f"plan: the adds before the last failed: {last.errno}")
    p.result, p.message = last.result, last.message
    return p


def largest_add(machine: PlanMachine, before: list[int], block: int,
                limit_blocks: int) -> Answer:
    """The largest add (in whole blocks, at most ``limit_blocks``) that succeeds
    after the adds ``before``: doubling until one fails, then bisection.
    Hot-add failures (ENOMEM for memmap, E2BIG past the address space) grow
    monotonically with the size, which is what makes the bisection exact; the
    two probes kept in the answer are run as they are reported."""
    lo, lo_probe = 0, None                 # lo blocks succeed (0 trivially)
    hi: int | None = None                  # hi blocks fail
    hi_probe: Probe | None = None
    k = 1
    while hi is None:
        k = min(k, limit_blocks + 1)
        p = probe(machine, before + [k * block])
        if p.result == "ok":
            lo, lo_probe = k, p
            if k > limit_blocks:
                raise AssertionError("plan: an add beyond the address space succeeded")
            k *= 2
        else:
            hi, hi_probe = k, p
    while hi - lo > 1:
        mid = (lo + hi) // 2
        p = probe(machine, before + [mid * block])
        if p.result == "ok":
            lo, lo_probe = mid, p
        else:
            hi, hi_probe = mid, p
    if lo_probe is None:                   # not even one block: the prefix alone
        lo_probe = Probe(machine.copy(), list(before), "ok")
    return Answer(lo * block, lo_probe, hi_probe)


def _geometry(machine: PlanMachine) -> tuple[int, int]:
    """Block size and the blocks between the first hot-add address and the
    end of the address space, from the engine's machine."""
    from .memory_hotplug import default_add_start
    m = _scenario(machine, []).build_machine()
    return m.block_size, (m.max_phys - default_add_start(m)) // m.block_size


def largest_single_add(machine: PlanMachine) -> Answer:
    block, room = _geometry(machine)
    return largest_add(machine, [], block, room)


def largest_growth(machine: PlanMachine) -> Answer:
    """Adds one after the other, each the largest that succeeds, until one
    block more fails; the answer is their sum.  A machine still growing after
    MAX_ROUNDS adds (5.13 .. 6.7 with memmap on memory: every single-block add
    hosts its own memmap once larger ones fall back to boot memory) gives a
    lower bound, without a failing proof."""
    block, room = _geometry(machine)
    adds: list[int] = []
    last: Answer | None = None
    for _ in range(MAX_ROUNDS):
        ans = largest_add(machine, adds, block, room - sum(adds) // block)
        if ans.bytes == 0:
            return Answer(sum(adds), ans.succeeds, ans.fails)
        adds.append(ans.bytes)
        last = ans
    assert last is not None               # MAX_ROUNDS >= 1 rounds ran, none returned
    return Answer(sum(adds), last.succeeds, None)


# ---------------------------------------------------------------- target settings

@dataclass
class Trial:
    settings: Settings
    came_up: bool = False
    offlinable: bool = False
    lost_bytes: int = 0                   # memmap of the target, wherever it lives
    boot_bytes: int = 0                   # of it, taken from memory online before
    why: str = ""
    scenario: str = ""

    def as_json(self) -> TrialJson:
        return {"settings": self.settings, "comes_up": self.came_up,
                "stays_offlinable": self.offlinable, "memmap_bytes": self.lost_bytes,
                "memmap_in_boot_memory_bytes": self.boot_bytes,
                "why_not": self.why or None, "scenario": self.scenario}


def target_candidates(machine: PlanMachine) -> list[Settings]:
    """Every setting the question varies; combinations the engine rejects
    (force before 6.6, a block size the target is not a multiple of) drop out
    when the trial runs."""
    modes: list[MemmapMode] = ["n", "y", "force"]
    policies: list[tuple[OnlinePolicy, int | None]] = [("contig-zones", None)]
    policies += [("auto-movable", r) for r in RATIOS]
    out: list[Settings] = []
    for mode in modes:
        for bs in BLOCK_SIZES:
            for policy, ratio in policies:
                for online in ONLINE_TYPES:
                    s: Settings = {"memmap_on_memory": mode, "block_size": bs,
                                   "online_policy": policy, "auto_online_blocks": online}
                    if ratio is not None:
                        s["auto_movable_ratio"] = ratio
                    out.append(s)
    return out


def target_scenario(machine: PlanMachine, settings: Settings, target: int,
                    load: int) -> ScenarioTable:
    steps: list[StepTable] = [{"op": "add", "size": fmt_size(target)}]
    if load:
        # the kernel's own allocations after the memory came up (slab, page
        # tables): unmovable, spread at random over the zones that take them
        steps.append({"op": "alloc", "kind": "unmovable", "pages": load, "seed": 1})
    steps.append({"op": "offline", "blocks": "online"})
    return {"machine": {**machine, **settings, "on_error": "stop"}, "step": steps}


def run_trial(machine: PlanMachine, settings: Settings, target: int,
              load: int) -> Trial | None:
    """None when the engine rejects the settings themselves."""
    from .report import memmap_summary
    t = Trial(settings.copy())
    data = target_scenario(machine, settings, target, load)
    try:
        sc = _parse(data)
        m = sc.build_machine()
    except ConfigError:
        return None
    if target % m.block_size:
        return None
    t.scenario = _toml(data)
    seen: dict[str, int] = {}

    def on_step(m: Machine, res: StepResult) -> None:
        if res.step.op == "add" and res.ok:
            from .constants import MEM_ONLINE
            hot = res.blocks
            seen["online"] = sum(1 for b in hot if m.blk_state[b] == MEM_ONLINE)
            seen["blocks"] = len(hot)
            mm = memmap_summary(m)
            seen["lost"] = (mm["self_hosted_vmemmap_pages"]
                            + mm["memmap_pages_in_boot_memory"]) * m.arch.page_size
            seen["boot"] = mm["memmap_pages_in_boot_memory"] * m.arch.page_size

    _, results = run_scenario(sc, machine=m, on_step=on_step)
    first = results[0]
    if not first.ok:
        t.why = f"add: {first.errno}: {first.message}"
        return t
    t.lost_bytes, t.boot_bytes = seen["lost"], seen["boot"]
    if seen["online"] != seen["blocks"]:
        t.why = f"{seen['blocks'] - seen['online']} of {seen['blocks']} blocks did not come online"
        return t
    t.came_up = True
    bad = next((r for r in results[1:] if not r.ok), None)
    if bad is not None:
        t.why = f"{bad.step.op}: {bad.errno}: {bad.message}"
        return t
    t.offlinable = True
    return t


def target_settings(machine: PlanMachine, target: int, load: int,
                    pool: Executor | None = None) -> list[Trial]:
    """Trials of every candidate; the good ones first, least memmap first, then
    least memmap taken from the memory that was online before the hot-add."""
    cands = target_candidates(machine)
    n = len(cands)
    done = _map(pool, run_trial, [machine] * n, cands, [target] * n, [load] * n)
    trials = [t for t in done if t is not None]
    return sorted(trials, key=lambda t: (not (t.came_up and t.offlinable), t.lost_bytes,
                                         t.boot_bytes))


A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
R = TypeVar("R")


@overload
def _map(pool: Executor | None, fn: Callable[[A], R], a: Sequence[A], /) -> list[R]: ...


@overload
def _map(pool: Executor | None, fn: Callable[[A, B, C, D], R], a: Sequence[A], b: Sequence[B],
         c: Sequence[C], d: Sequence[D], /) -> list[R]: ...


def _map(pool: Executor | None, fn: Callable[..., R], *args: Sequence[object]) -> list[R]:
    """fn over the argument lists, on the pool when there is one (the searches
    are independent of each other; each is sequential inside)."""
    if pool is None:
        return list(map(fn, *args))
    return list(pool.map(fn, *args, chunksize=max(1, len(args[0]) // 16)))


# ---------------------------------------------------------------- offlinable now

def offlinable_now(m: Machine) -> Offlinable:
    """Every online memory block: would an offline succeed now, and if not why."""
    import numpy as np

    from .constants import MEM_ONLINE
    ok: list[int] = []
    refused: list[Refusal] = []
    for b in np.flatnonzero(m.blk_state == MEM_ONLINE):
        blk = int(b)
        err = m.design.offline_check(m, blk)
        if err is None:
            ok.append(blk)
        else:
            refused.append({"block": blk, "errno": err.errno, "reason": err.message,
                            "early": bool(m.blk_early[blk])})
    return {"offlinable": ok, "refused": refused}


# ---------------------------------------------------------------- the plan

def plan_machine(args: argparse.Namespace) -> PlanMachine:
    machine: PlanMachine = {"arch": args.arch, "kernel": args.kernel,
                            "boot_memory": args.boot_memory}
    for key in ("block_size", "online_policy", "auto_movable_ratio", "auto_online_blocks",
                "max_memory"):
        v = getattr(args, key, None)
        if v is not None:
            machine[key] = v
    # the settings alone, so a bad value is named before any search
    for mode in MODES:
        _scenario({**machine, "memmap_on_memory": mode}, []).build_machine()
    return machine


def make_plan(machine: PlanMachine, target: int | None = None, load: int = 0,
              scenario: Scenario | None = None, workers: int = 1) -> Plan:
    """Every answer; ``workers`` > 1 runs the independent searches on a local
    process pool."""
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        return _make_plan(machine, target, load, scenario, pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _make_plan(machine: PlanMachine, target: int | None, load: int, scenario: Scenario | None,
               pool: Executor | None) -> Plan:
    by_mode: list[PlanMachine] = [{**machine, "memmap_on_memory": mode} for mode in MODES]
    single = dict(zip(MODES, _map(pool, largest_single_add, by_mode), strict=True))
    growth = dict(zip(MODES, _map(pool, largest_growth, by_mode), strict=True))
    head: PlanHead = {
        "machine": machine,
        "largest_single_add": {mode: a.bytes for mode, a in single.items()},
        "largest_total_growth": {mode: a.bytes for mode, a in growth.items()},
        "proofs": {"largest_single_add": {mode: a.as_json() for mode, a in single.items()},
                   "largest_total_growth": {mode: a.as_json() for mode, a in growth.items()}},
    }
    if target is not None:
        trials = target_settings(machine, target, load, pool)
        head["target"] = {"bytes": target, "load_pages": load,
                          "settings": [t.as_json() for t in trials]}
    now: OfflinableNow
    if scenario is not None:
        m, _ = run_scenario(scenario)
        now = {**offlinable_now(m), "source": scenario.source}
    else:
        m = _scenario({**machine, "memmap_on_memory": "n"}, []).build_machine()
        now = {**offlinable_now(m), "source": "boot"}
    return {**head, "offlinable_now": now, "_answers": {"single": single, "growth": growth}}


def format_plan(plan: Plan) -> str:
    mc = plan["machine"]
    head = ", ".join(f"{k}={v}" for k, v in mc.items())
    lines = [f"machine: {head}", ""]
    answers = plan["_answers"]
    for by_mode, title in ((answers["single"], "largest single hot-add"),
                           (answers["growth"], "largest total growth")):
        lines.append(f"{title} (proof: succeeds at the size, fails one block above)")
        for mode, a in by_mode.items():
            least = "" if a.fails is not None else "at least "
            lines.append(f"  memmap_on_memory={mode}: {least}{size_str(a.bytes)}"
                         f" ({a.bytes} bytes)")
            lines.append(f"    {a.succeeds.line()}")
            lines.append(f"    {a.fails.line()}" if a.fails is not None else
                         f"    still growing after {MAX_ROUNDS} hot-adds (--max-memory "
                         "bounds the search)")
        lines.append("")
    if "target" in plan:
        t = plan["target"]
        good = [s for s in t["settings"] if s["comes_up"] and s["stays_offlinable"]]
        lines.append(f"settings under which a {fmt_size(t['bytes'])} hot-add comes up and stays "
                     f"offlinable (load: {t['load_pages']} unmovable pages), least memmap first: "
                     f"{len(good)} of {len(t['settings'])}")
        for s in good[:10]:
            boot = s["memmap_in_boot_memory_bytes"]
            lines.append(f"  {_settings(s['settings']):<76} memmap {fmt_size(s['memmap_bytes'])}"
                         f" ({fmt_size(boot) if boot else 0} in boot memory)")
        if len(good) > 10:
            lines.append(f"  ... {len(good) - 10} more (--json lists all)")
        bad = [s for s in t["settings"] if not (s["comes_up"] and s["stays_offlinable"])]
        reasons: dict[str, int] = {}
        for s in bad:
            why = s["why_not"]
            assert why is not None        # run_trial says why a trial is not good
            k = ":".join(why.split(":")[:2])   # "offline: EBUSY"
            reasons[k] = reasons.get(k, 0) + 1
        for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            lines.append(f"  not: {n} setting(s), {k}")
        if good:
            lines.append("  proof of the first:")
            lines += ["    " + ln for ln in good[0]["scenario"].splitlines() if ln]
        lines.append("")
    o = plan["offlinable_now"]
    lines.append(f"blocks that can be offlined now ({o['source']}): "
                 f"{_ranges(o['offlinable']) or 'none'}")
    by_reason: dict[tuple[str, str], list[int]] = {}
    for r in o["refused"]:
        by_reason.setdefault((r["errno"], _generic(r["reason"])), []).append(r["block"])
    for (errno, reason), blocks in by_reason.items():
        lines.append(f"  {_ranges(blocks)}: {errno}: {reason}")
    return "\n".join(lines)


def _settings(s: Settings) -> str:
    out = f"memmap_on_memory={s['memmap_on_memory']} block_size={s['block_size']} " \
          f"{s['online_policy']}"
    if "auto_movable_ratio" in s:
        out += f" ratio={s['auto_movable_ratio']}"
    return out + f" auto_online_blocks={s['auto_online_blocks']}"


def _generic(reason: str) -> str:
    """A refusal reason without its block and addresses, to group blocks."""
    import re
    reason = re.sub(r"\[mem 0x[0-9a-f]+-0x[0-9a-f]+\] ", "", reason)
    reason = re.sub(r"memory\d+", "the block", reason)
    return re.sub(r"pfn 0x[0-9a-f]+", "a pfn", reason)


def _ranges(ids: list[int]) -> str:
    out: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        out.append(f"memory{ids[i]}" if i == j else f"memory{ids[i]}-{ids[j]}")
        i = j + 1
    return ", ".join(out)


def _toml(data: ScenarioTable) -> str:
    lines = ["[machine]"] + [f"{k} = {json.dumps(v)}" for k, v in data["machine"].items()]
    for s in data["step"]:
        lines += ["", "[[step]]"] + [f"{k} = {json.dumps(v)}" for k, v in s.items()]
    return "\n".join(lines) + "\n"


def write_proofs(plan: Plan, directory: str | Path) -> list[Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in ("single", "growth"):
        for mode, a in plan["_answers"][key].items():
            for what, p in (("ok", a.succeeds), ("fail", a.fails)):
                if p is None:
                    continue
                path = d / f"{key}-mom-{mode}-{what}.toml"
                path.write_text(p.toml())
                paths.append(path)
    return paths


# ---------------------------------------------------------------- command line

def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="sizing answers found by searching with the engine")
    p.add_argument("--arch", help="see `hotmem arches` (default x86_64)")
    p.add_argument("--kernel", help="kernel release whose semantics apply (default 6.12)")
    p.add_argument("--boot-memory", help="boot RAM, e.g. 1G (default 4G)")
    p.add_argument("--block-size", help="memory block size (default: the arch's)")
    p.add_argument("--online-policy", help="contig-zones or auto-movable")
    p.add_argument("--auto-movable-ratio", type=int)
    p.add_argument("--auto-online-blocks", help="offline (default), online, online_kernel, "
                   "online_movable: how each hot-add of the growth search comes up")
    p.add_argument("--max-memory", help="end of the physical address space to search")
    p.add_argument("--target", help="a hot-add size: which settings bring it up offlinable")
    p.add_argument("--load", type=int, default=4096, metavar="PAGES",
                   help="with --target: unmovable kernel pages allocated after the hot-add "
                   "(default 4096)")
    p.add_argument("--scenario", help="the machine whose blocks are judged offlinable now "
                   "(default: the plan's machine as it boots)")
    p.add_argument("--proofs", metavar="DIR", help="write the proving scenarios to DIR")
    p.add_argument("--workers", type=int, help="local worker processes for the independent "
                   "searches (default: all cores)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)


def cmd_plan(args: argparse.Namespace) -> int:
    from .scenario import load_scenario
    scenario = load_scenario(args.scenario) if args.scenario else None
    if scenario is not None:
        # the scenario's machine unless the options say otherwise
        for key in ("arch", "kernel", "boot_memory"):
            if getattr(args, key) is None and key in scenario.machine:
                setattr(args, key, scenario.machine[key])
    args.arch = args.arch or "x86_64"
    args.kernel = str(args.kernel or "6.12")
    args.boot_memory = args.boot_memory or "4G"
    target = None
    if args.target is not None:
        target = parse_size(args.target, "--target")
        if target == 0:
            raise ConfigError("--target: give a size above 0")
    if args.load < 0:
        raise ConfigError("--load: give a number of pages, 0 or more")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers: give at least 1")
    machine = plan_machine(args)
    workers = args.workers or len(os.sched_getaffinity(0))
    plan = make_plan(machine, target, args.load, scenario, workers=workers)
    if args.proofs:
        write_proofs(plan, args.proofs)
    if args.json:
        json.dump({k: v for k, v in plan.items() if not k.startswith("_")}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_plan(plan))
    return 0
