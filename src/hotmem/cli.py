"""The hotmem command line.

    hotmem run [SCENARIO.toml] [--json] [--export DIR] [--export-each]
    hotmem compare SCENARIO.toml [--designs none,mainline] [--json]
    hotmem arches [--kernel 6.12] [--json]
    hotmem fidelity [CAPTURE ...] [--json]
    hotmem bench [--sizes 1G,64G,1T] [--paths ...] [--json]
    hotmem plot [SCENARIO.toml] [--out FILE.png] [--design D]
    hotmem snapshot [ROOT] --out FILE [--arch A]
    hotmem run [SCENARIO.toml] --from SNAPSHOT
    hotmem sweep GRID.toml --out RESULTS.parquet [--workers N | --scheduler ADDR | --dask-local N]
    hotmem sweep --plot RESULTS.parquet --x AXIS --y METRIC [--facet AXIS] [--out FILE.png]
    hotmem plan --arch A --kernel K --boot-memory SIZE [--target SIZE] [--scenario F] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import ConfigError
from .machine import Machine
from .report import format_summary, machine_report, step_line
from .scenario import (
    Scenario,
    StepResult,
    default_scenario_text,
    load_scenario,
    loads_scenario,
    run_scenario,
)
from .validate import clip

# an error message is one line of fewer than this many characters
MAX_MESSAGE = 300


class Progress:
    """Steps done, on stderr, once a run has taken more than two seconds;
    silent when stderr is not a terminal."""

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self.t0 = time.monotonic()
        self.bar = None
        self.enabled = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if not self.enabled or time.monotonic() - self.t0 < 2.0:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=self.total, desc=self.label, file=sys.stderr, leave=False,
                            unit="step", initial=done)
        else:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_one(sc: Scenario, args: argparse.Namespace, label: str,
             **overrides: object) -> tuple[Machine, list[StepResult]]:
    prog = Progress(len(sc.steps), label)
    writer = None
    if getattr(args, "export", None):
        from .safeio import DirWriter
        # refused (a symlink, a file, a non-empty folder without --force)
        # before anything runs; written whole and renamed into place at the end
        writer = DirWriter(args.export, force=args.force)
    try:
        def on_step(m: Machine, res: StepResult) -> None:
            prog.update(res.step.index + 1)
            if writer is not None and args.export_each:
                from .views.export import write_views
                write_views(m, writer, f"{res.step.index:02d}-{res.step.op}/")

        try:
            # machine and on_step named: **overrides can then fill only [machine] keys
            m, results = run_scenario(sc, machine=None, on_step=on_step, **overrides)
        finally:
            prog.close()
        if writer is not None:
            if not args.export_each:
                from .views.export import write_views
                write_views(m, writer)
            writer.commit()
            if writer.kept is not None:
                print(f"hotmem: kept {writer.kept_path()}: the folder --force replaced held "
                      "files hotmem did not write", file=sys.stderr)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return m, results


def _failed(results: Iterable[StepResult]) -> bool:
    return any(not r.ok and r.step.expect is None or not r.expected_ok for r in results)


def cmd_run(args: argparse.Namespace) -> int:
    if args.scenario is None and args.from_snapshot is None:
        if args.export:
            raise ConfigError("--export needs a SCENARIO (the default job runs two machines)")
        return cmd_default(args)
    if args.scenario is None:
        sc = loads_scenario("", "<empty>", allow_empty=True)
    else:
        sc = load_scenario(args.scenario, allow_empty=args.from_snapshot is not None)
    overrides = {}
    if args.from_snapshot is not None:
        # --from replaces the scenario's machine
        sc.machine = {}
        overrides["snapshot"] = str(Path(args.from_snapshot).absolute())
    label = Path(args.scenario).name if args.scenario else args.from_snapshot
    m, results = _run_one(sc, args, label, **overrides)
    if args.json:
        json.dump(machine_report(m, results), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_summary(m, results))
    return 1 if _failed(results) else 0


def cmd_default(args: argparse.Namespace) -> int:
    """The default job: the shipped scenario without and with memmap on memory."""
    sc = loads_scenario(default_scenario_text(), "hotmem/scenarios/default.toml")
    from .compare import compare, format_compare
    runs = compare(sc, ["none", "mainline"])
    if args.json:
        json.dump({name: machine_report(m, res) for name, (m, res) in runs.items()},
                  sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for name, (m, res) in runs.items():
        print(f"=== {name}: memmap_on_memory={m.memmap_on_memory}")
        print(format_summary(m, res))
        print()
    print(format_compare(runs))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from . import designs as design_registry
    from .compare import compare, compare_report, format_compare
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    for d in designs:
        try:     # a built-in name or module:attribute, loaded before anything runs
            design_registry.get(d)
        except ConfigError as err:
            raise ConfigError(f"--designs: {clip(str(err), 200)}") from None
    if not designs:
        raise ConfigError("--designs: no design given")
    sc = load_scenario(args.scenario)
    runs = compare(sc, designs)
    if args.json:
        json.dump(compare_report(runs), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for name, (_, res) in runs.items():
            print(f"=== {name}")
            for r in res:
                print(step_line(r))
            print()
        print(format_compare(runs))
    # as run: 1 when a step failed (or missed its expect) under any design
    return 1 if any(_failed(res) for _, res in runs.values()) else 0


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Read ROOT's memory state (read only) and write it to --out."""
    from .snapshot import build_machine, differences, read_snapshot, save_snapshot
    root = Path(args.root)
    out = Path(args.out).absolute()
    for sub in ("proc", "sys"):
        inside = root.absolute() / sub
        if out == inside or inside in out.parents:
            raise ConfigError(f"--out {args.out}: inside {inside}; a snapshot never writes "
                              "under the root it reads")
    t0 = time.monotonic()
    doc = read_snapshot(root, arch=args.arch)
    m = build_machine(doc, str(root))
    diffs = differences(m, doc)
    doc["source"]["notes"] += [f"built machine differs: {d}" for d in diffs]
    save_snapshot(doc, out)
    b = doc["blocks"]
    hot = sum(b["hot"])
    print(f"{root}: kernel {doc['kernel']['release']} (era {doc['kernel']['era']}), "
          f"{doc['arch']}, {len(b['ids'])} memory blocks of {doc['block_size'] >> 20} MiB "
          f"({hot} hot-added in {len(doc['groups'])} devices), "
          f"page state {'from kpageflags' if doc['pages'] else 'placed from free counts'}; "
          f"{time.monotonic() - t0:.2f} s")
    for rel, why in doc["source"]["unreadable"].items():
        print(f"  could not read {rel}: {why}")
    for note in doc["source"]["notes"]:
        print(f"  note: {note}")
    print(f"wrote {args.out}")
    return 0


def cmd_arches(args: argparse.Namespace) -> int:
    from .archtable import arch_table, format_arch_table
    rows = arch_table(args.kernel)
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_arch_table(rows, args.kernel))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .views.plot import plot_machine
    sc = load_scenario(args.scenario) if args.scenario else loads_scenario(
        default_scenario_text(), "hotmem/scenarios/default.toml")
    overrides = {}
    if args.design:
        from .compare import design_overrides
        overrides = design_overrides(sc, args.design)
    m, results = run_scenario(sc, machine=None, on_step=None, **overrides)
    plot_machine(m, args.out)
    print(f"wrote {args.out}")
    return 1 if _failed(results) else 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main
    return bench_main(args.args)


def cmd_fidelity(args: argparse.Namespace) -> int:
    from .fidelity import main as fidelity_main
    return fidelity_main(args.captures + (["--json"] if args.json else []))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hotmem", description="Simulate Linux memory hotplug "
                                "with memmap on memory, per architecture and kernel era.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario (without one: the default job)")
    r.add_argument("scenario", nargs="?", help="scenario TOML file")
    r.add_argument("--json", action="store_true", help="print a JSON report")
    r.add_argument("--export", metavar="DIR", help="write /proc and /sys views to DIR")
    r.add_argument("--export-each", action="store_true",
                   help="with --export: one folder per step (DIR/00-add, ...)")
    r.add_argument("--from", dest="from_snapshot", metavar="SNAPSHOT",
                   help="start from a snapshot (hotmem snapshot) instead of [machine]")
    r.add_argument("--force", action="store_true",
                   help="with --export: replace an existing non-empty DIR (only files "
                   "hotmem wrote there are deleted)")
    r.set_defaults(func=cmd_run)
    sn = sub.add_parser("snapshot", help="read a machine's memory state into a snapshot file")
    sn.add_argument("root", nargs="?", default="/",
                    help="root holding proc/ and sys/ (default /: this machine)")
    sn.add_argument("--out", required=True, help="snapshot file to write (JSON)")
    sn.add_argument("--arch", help="hotmem arch, when ROOT does not tell it")
    sn.set_defaults(func=cmd_snapshot)
    c = sub.add_parser("compare", help="run one scenario under several designs")
    c.add_argument("scenario")
    c.add_argument("--designs", default="none,mainline",
                   help="comma-separated: none, mainline, rfc2018 (default: none,mainline)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)
    a = sub.add_parser("arches", help="memmap cost and memmap-on-memory verdict per arch")
    a.add_argument("--kernel", default="6.12")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_arches)
    b = sub.add_parser("bench", add_help=False,
                       help="time the hot-path strategies (hotmem bench --help)")
    b.add_argument("args", nargs=argparse.REMAINDER)
    b.set_defaults(func=cmd_bench)
    pl = sub.add_parser("plot", help="draw physical memory and free blocks per order (PNG)")
    pl.add_argument("scenario", nargs="?", help="scenario TOML file (default: the default job)")
    pl.add_argument("--out", default="hotmem.png", help="PNG file to write (default hotmem.png)")
    pl.add_argument("--design", help="run under this design: none, mainline, rfc2018")
    pl.set_defaults(func=cmd_plot)
    f = sub.add_parser("fidelity", help="compare hotmem with the real-kernel captures")
    f.add_argument("captures", nargs="*", help="capture names or .tar.xz paths (default: all)")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_fidelity)
    # sweep and plan keep their options in their own modules
    from . import plan, sweep
    sweep.add_parser(sub)
    plan.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        # argparse's REMAINDER drops leading options; hand them over untouched
        from .bench import main as bench_main
        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    if (getattr(args, "export_each", False) or getattr(args, "force", False)) and not args.export:
        print("hotmem: error: --export-each and --force need --export DIR", file=sys.stderr)
        return 2
    func: Callable[[argparse.Namespace], int] = args.func   # set_defaults(func=cmd_...)
    try:
        return func(args)
    except ConfigError as err:
        # one line, bounded: values are shortened where the error is made,
        # this is the last guard
        print(f"hotmem: error: {clip(str(err), MAX_MESSAGE - 16)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
