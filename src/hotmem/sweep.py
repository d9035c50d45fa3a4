"""Sweeps: one base scenario run at every point of a grid of settings.

    base = "scenario.toml"                 # relative to the grid file
    [axes]
    "machine.kernel" = ["6.1", "6.8", "6.12"]
    "step.0.size" = {start = "1G", stop = "8G", factor = 2}   # 1G 2G 4G 8G
    "machine.memmap_on_memory" = ["n", "y"]
    design = ["none", "mainline"]          # hotmem.compare.design_overrides
    seed = {start = 1, stop = 4}           # the seed of every alloc and free step

An axis is ``machine.KEY`` (a [machine] key), ``step.N.KEY`` (a key of the
N-th [[step]], 0-based), ``design`` or ``seed``; its values are a list or a
range table {start, stop[, step | factor]} (stop included; sizes as "1G").
The points are the cartesian product, axes in file order, last axis fastest.

Every point is one run_scenario(); its row holds one column per axis (the
grid's value), the report's numbers under their ``hotmem run --json`` names
flattened with dots (``meminfo_kB.MemTotal``, ``totalram_pages``,
``zones.0/Movable.present_pages``, ``zones.0/Normal.free_area.nr_free.10``,
``machine.block_size_bytes``; per-block data is left out), ``step.N.outcome``
(``ok`` or the errno name; empty for a step not reached) and ``error`` (why
the point could not run, else empty).  An axis column shadows a report field
of the same name (``machine.kernel``).

The same task function runs on a local process pool or on dask.distributed,
so the rows do not depend on where they ran; a run is a pure function of its
point (allocation placement is seeded), so sweeps are deterministic.
"""
from __future__ import annotations

import argparse
import copy
import csv
import datetime
import itertools
import math
import os
import re
import tempfile
import time
import tomllib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, TypeVar

from .designs import Design
from .errors import ConfigError
from .scenario import COMMON_STEP_KEYS, MACHINE_KEYS, STEP_KEYS, parse_scenario
from .units import fmt_size, parse_size

if TYPE_CHECKING:
    from distributed import Future, LocalCluster

    from .report import MachineReport

GRID_KEYS: Final = ("base", "axes")
SEEDED_OPS: Final = ("alloc", "free")
# report sections that are per block or per step: steps become step.N.outcome
SKIPPED_REPORT_KEYS: Final = ("memory_blocks", "steps")

# a value of an axis: any TOML value but a table or an array
AxisValue = str | int | float | bool | datetime.datetime | datetime.date | datetime.time
# a cell of a row: an axis value, a report number or string, a step outcome;
# None where a point has no such column (or an empty CSV cell)
Cell = AxisValue | None
# a point of the grid, {axis: value}
Point = dict[str, AxisValue]
# a row of the table, {column: cell}: its columns depend on the grid and the
# report, so it is a mapping rather than a TypedDict
Row = dict[str, Cell]
# a task's points and the rows it returns, each with the point's index in the grid
Chunk = list[tuple[int, Point]]
Done = list[tuple[int, Row]]
TableFormat = Literal["parquet", "csv"]
T = TypeVar("T")


@dataclass
class Grid:
    base: dict[str, Any]  # the base scenario as parsed TOML
    source: str           # the base scenario's file name
    axes: dict[str, list[AxisValue]]

    @property
    def names(self) -> list[str]:
        return list(self.axes)

    def points(self) -> list[Point]:
        """Every point, as {axis: value}, in grid order."""
        return [dict(zip(self.axes, vals, strict=True))
                for vals in itertools.product(*self.axes.values())]

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.axes.values())


def point_key(point: Mapping[str, Cell], names: list[str]) -> tuple[str, ...]:
    """How a point is recognised in an output file (CSV cells are text)."""
    return tuple(str(point[n]) for n in names)


# ---------------------------------------------------------------- grid files

def load_grid(path: str | Path) -> Grid:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_grid(data, str(path), path.parent)


def parse_grid(data: dict[str, Any], source: str = "<grid>",
               base_dir: Path = Path(".")) -> Grid:
    unknown = sorted(set(data) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; a grid has base and [axes]")
    base_name = data.get("base")
    if not isinstance(base_name, str):
        raise ConfigError(f"{source}: base: give the base scenario file, "
                          "e.g. base = \"scenario.toml\"")
    base_path = base_dir / base_name
    try:
        base = tomllib.loads(base_path.read_text())
    except OSError as err:
        raise ConfigError(f"{source}: base: cannot read {base_path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: base: {base_path} is not valid TOML: {err}") from None
    parse_scenario(base, str(base_path))
    raw_axes = data.get("axes")
    if not isinstance(raw_axes, dict) or not raw_axes:
        raise ConfigError(f"{source}: axes: give at least one axis in an [axes] table")
    axes: dict[str, list[AxisValue]] = {}
    for name, spec in raw_axes.items():
        where = f"{source}: axes: {name!r}"
        values = _axis_values(where, spec)
        _check_axis(where, name, base, values, str(base_path))
        axes[name] = values
    return Grid(base, str(base_path), axes)


def _axis_values(where: str, spec: object) -> list[AxisValue]:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: the list of values is empty")
        if any(isinstance(v, (dict, list)) for v in spec):
            raise ConfigError(f"{where}: values must be strings, numbers or booleans")
        if len(set(map(type, spec))) > 1:
            # one type per column, so the table loads in pandas as it is
            spec = [str(v) for v in spec]
        if len({str(v) for v in spec}) != len(spec):
            raise ConfigError(f"{where}: a value is listed twice")
        return list(spec)
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: give a list of values or a range "
                          "{start, stop, step | factor}")
    extra = sorted(set(spec) - {"start", "stop", "step", "factor"})
    if extra or "start" not in spec or "stop" not in spec or ("step" in spec and "factor" in spec):
        raise ConfigError(f"{where}: a range is {{start, stop}} with step or factor "
                          f"(got keys {sorted(spec)})")
    as_size = isinstance(spec["start"], str)
    start = parse_size(spec["start"], f"{where}: start")
    stop = parse_size(spec["stop"], f"{where}: stop")
    step = parse_size(spec.get("step", 1), f"{where}: step")
    factor = spec.get("factor")
    if factor is not None and (not isinstance(factor, int) or isinstance(factor, bool)
                               or factor < 2):
        raise ConfigError(f"{where}: factor must be a whole number of at least 2")
    if factor is None and step == 0:
        raise ConfigError(f"{where}: step must not be 0")
    if factor is not None and start == 0:
        raise ConfigError(f"{where}: a range with a factor cannot start at 0")
    if stop < start:
        raise ConfigError(f"{where}: stop is below start")
    values: list[int] = []
    v = start
    while v <= stop:
        values.append(v)
        v = v * factor if factor is not None else v + step
    if as_size:
        return [fmt_size(v) for v in values]
    return list(values)


def _check_axis(where: str, name: str, base: dict[str, Any], values: list[AxisValue],
                base_src: str) -> None:
    steps = base.get("step", [])
    if name in ("design", "seed"):
        if name == "design":
            from . import designs
            for v in values:       # a built-in name or module:attribute
                try:
                    designs.get(_design(v))
                except ConfigError as err:
                    raise ConfigError(f"{where}: {str(err)[:200]}") from None
        else:
            if not any(s.get("op") in SEEDED_OPS for s in steps):
                raise ConfigError(f"{where}: the base scenario has no alloc or free step to seed")
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ConfigError(f"{where}: seeds must be whole numbers")
    elif name.startswith("machine."):
        key = name[len("machine."):]
        if key not in MACHINE_KEYS:
            raise ConfigError(f"{where}: {key!r} is not a [machine] key; known: "
                              f"{', '.join(sorted(MACHINE_KEYS))}")
    elif name.startswith("step."):
        idx, _, key = name[len("step."):].partition(".")
        if not idx.isdigit() or not key:
            raise ConfigError(f"{where}: write step.N.KEY with N the 0-based step number")
        if int(idx) >= len(steps):
            raise ConfigError(f"{where}: the base scenario has {len(steps)} step(s), "
                              f"numbered from 0")
        op = steps[int(idx)].get("op")
        allowed = STEP_KEYS.get(op, set()) | (COMMON_STEP_KEYS - {"op", "note", "capture"})
        if key not in allowed:
            raise ConfigError(f"{where}: step {idx} ({op}) takes {', '.join(sorted(allowed))}")
    else:
        raise ConfigError(f"{where}: an axis is machine.KEY, step.N.KEY, design or seed")
    # every value alone on the base: a bad value is named with its axis here,
    # not found later as a failed point
    for v in values:
        try:
            parse_scenario(apply_point(base, {name: v}), base_src)
        except ConfigError as err:
            raise ConfigError(f"{where}: value {v!r}: {err}") from None


def _design(v: object) -> str | Design:
    """A design axis value: a name (or, from a Grid made in code, a Design);
    anything else is refused as designs.get() refuses it."""
    if not isinstance(v, str | Design):
        raise ConfigError(f"design: expected a name, got {type(v).__name__}")
    return v


def apply_point(base: dict[str, Any], point: Mapping[str, AxisValue]) -> dict[str, Any]:
    """The base scenario (parsed TOML) with a point's values set in."""
    data = copy.deepcopy(base)
    for name, v in point.items():
        if name.startswith("machine."):
            data.setdefault("machine", {})[name[len("machine."):]] = v
        elif name.startswith("step."):
            idx, _, key = name[len("step."):].partition(".")
            data["step"][int(idx)][key] = v
        elif name == "seed":
            for s in data.get("step", []):
                if s.get("op") in SEEDED_OPS:
                    s["seed"] = v
    return data


# ---------------------------------------------------------------- one point

def report_metrics(rep: MachineReport) -> dict[str, Cell]:
    """The report's numbers and strings, flattened with dots; zones by node/name."""
    out: dict[str, Cell] = {}

    def walk(prefix: str, v: object) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else k, x)
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(f"{prefix}.{i}", x)
        elif v is None or isinstance(v, str | int | float):
            out[prefix] = v
        else:
            # the report is JSON (hotmem run --json prints it): never reached
            raise TypeError(f"report field {prefix}: {type(v).__name__} is not a JSON value")

    for key, v in rep.items():
        if key in SKIPPED_REPORT_KEYS:
            continue
        if key == "zones":
            for z in rep["zones"]:
                walk(f"zones.{z['node']}/{z['zone']}",
                     {k: x for k, x in z.items() if k not in ("node", "zone")})
        else:
            walk(key, v)
    return out


def run_point(base: dict[str, Any], source: str, point: Point) -> Row:
    """One row: the point's axes, the report's metrics, each step's outcome."""
    from .compare import design_overrides
    from .report import machine_report
    from .scenario import run_scenario
    row: Row = dict(point)
    try:
        sc = parse_scenario(apply_point(base, point), source)
        overrides = design_overrides(sc, _design(point["design"])) if "design" in point else {}
        m, results = run_scenario(sc, machine=None, on_step=None, **overrides)
        rep = machine_report(m, results)
    except Exception as err:  # noqa: BLE001 - one failing point is recorded, not fatal
        row["error"] = f"{type(err).__name__}: {err}"
        return row
    for k, v in report_metrics(rep).items():
        row.setdefault(k, v)
    for s in rep["steps"]:
        row[f"step.{s['index']}.outcome"] = s["result"]
    row["error"] = None
    return row


def run_points(base: dict[str, Any], source: str, chunk: Chunk) -> Done:
    """The task, for a process pool and for dask alike: rows of some points."""
    return [(i, run_point(base, source, p)) for i, p in chunk]


# ---------------------------------------------------------------- tables

def columns(rows: Iterable[Row], axes: list[str]) -> list[str]:
    """Axes, error, the metrics in first-seen order, the step outcomes.  The
    error column closes the axes, so a table tells its own axes."""
    seen: dict[str, None] = {}
    steps: set[int] = set()
    for r in rows:
        for k in r:
            if k.startswith("step.") and k.endswith(".outcome") and k not in axes:
                steps.add(int(k.split(".")[1]))
            elif k not in axes and k != "error":
                seen.setdefault(k)
    return axes + ["error"] + list(seen) + [f"step.{i}.outcome" for i in sorted(steps)]


def _need(module: str, what: str, extra: str = "sweep") -> None:
    """A clear exit 2 instead of a traceback when an optional extra is missing."""
    import importlib.util
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} need {module}: pip install 'hotmem[{extra}]'")


def table_axes(cols: list[str]) -> list[str]:
    return cols[:cols.index("error")] if "error" in cols else []


def table_format(path: Path) -> TableFormat:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise ConfigError(f"--out {path}: write .parquet or .csv")


def read_table(path: str | Path) -> list[Row]:
    """Rows of a sweep table (parquet: typed; CSV: text, empty cells None)."""
    path = Path(path)
    fmt = table_format(path)
    try:
        if fmt == "parquet":
            _need("pyarrow", "parquet tables")
            import pyarrow.parquet as pq
            rows: list[Row] = pq.read_table(path).to_pylist()
            return rows
        with open(path, newline="") as f:
            return [{k: (v if v != "" else None) for k, v in r.items()} for r in csv.DictReader(f)]
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None


def write_table(path: str | Path, rows: list[Row], cols: list[str]) -> None:
    """Write atomically: a temporary file beside the target, fsync, rename.
    A symbolic link at the target is refused, never followed."""
    path = Path(path)
    fmt = table_format(path)
    if path.is_symlink():
        raise ConfigError(f"--out {path} is a symbolic link; give the file itself")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        # mkstemp makes the file 0600: give the table the mode a plain open()
        # would, or keep the one it had
        try:
            mode = os.stat(path, follow_symlinks=False).st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            if fmt == "parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq
                pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in rows]),
                               f)
            else:
                import io
                text = io.TextIOWrapper(f, newline="", encoding="utf-8")
                w = csv.DictWriter(text, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                w.writerows(rows)
                text.flush()
                text.detach()
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    dfd = os.open(path.parent or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)  # the rename itself survives a crash
    finally:
        os.close(dfd)


# ---------------------------------------------------------------- running

@dataclass
class SweepResult:
    rows: list[Row]
    ran: int
    skipped: int
    errors: int


def chunk_size(n: int, workers: int) -> int:
    """Points per task: about eight tasks per worker, at most 32 points, so the
    pool stays busy to the end and per-task overhead stays small."""
    return max(1, min(32, n // (workers * 8)))


def sweep(grid: Grid, out: str | Path | None = None, *, workers: int | None = None,
          scheduler: str | None = None, dask_local: int | None = None,
          progress: Callable[[int, int], None] | None = None,
          checkpoint_seconds: float = 60.0) -> SweepResult:
    """Run every point not already in ``out``; write ``out`` now and then and at
    the end (also when interrupted).  ``progress(done, total)`` after each task."""
    names = grid.names
    points = grid.points()
    index = {point_key(p, names): i for i, p in enumerate(points)}
    old: list[Row] = []
    if out is not None:
        out = Path(out)
        if table_format(out) == "parquet":
            _need("pyarrow", "parquet tables")
        if out.is_symlink():
            raise ConfigError(f"--out {out} is a symbolic link; give the file itself")
        if not out.parent.is_dir():
            raise ConfigError(f"--out {out}: no directory {out.parent}")
        if out.exists():
            old = read_table(out)
            if old and table_axes(list(old[0])) != names:
                raise ConfigError(f"--out {out} holds a sweep over other axes "
                                  f"({', '.join(table_axes(list(old[0]))) or 'none'}, not "
                                  f"{', '.join(names)}); give another file")
    done_keys = {point_key(r, names) for r in old}
    todo = [(i, p) for i, p in enumerate(points) if point_key(p, names) not in done_keys]
    new: dict[int, Row] = {}

    def save() -> None:
        if out is None:
            return
        rows = sorted(old, key=lambda r: index.get(point_key(r, names), len(points)))
        rows = _merge(rows, new, index, names)
        write_table(out, rows, columns(rows, names))

    total = len(points)
    skipped = total - len(todo)
    if progress is not None:
        progress(skipped, total)
    last_save = time.monotonic()
    tasks = _execute(grid, todo, workers, scheduler, dask_local)
    try:
        for i_rows in tasks:
            for i, row in i_rows:
                new[i] = row
            if progress is not None:
                progress(skipped + len(new), total)
            if out is not None and time.monotonic() - last_save > checkpoint_seconds:
                save()
                last_save = time.monotonic()
    finally:
        tasks.close()                      # cancel what has not started, at once
        save()
    rows = _merge(sorted(old, key=lambda r: index.get(point_key(r, names), total)),
                  new, index, names)
    return SweepResult(rows, len(new), skipped, sum(1 for r in new.values() if r.get("error")))


def _merge(old_sorted: list[Row], new: dict[int, Row], index: dict[tuple[str, ...], int],
           names: list[str]) -> list[Row]:
    """Old and new rows in grid order (old rows of points no longer in the grid last)."""
    keyed = [(index.get(point_key(r, names), len(index)), r) for r in old_sorted]
    keyed += sorted(new.items())
    return [r for _, r in sorted(keyed, key=lambda t: t[0])]


def _execute(grid: Grid, todo: Chunk, workers: int | None, scheduler: str | None,
             dask_local: int | None) -> Generator[Done, None, None]:
    """Yield lists of (point index, row) as tasks finish."""
    if not todo:
        return
    if scheduler is not None or dask_local is not None:
        yield from _execute_dask(grid, todo, scheduler, dask_local)
        return
    workers = workers or len(os.sched_getaffinity(0))
    chunks = _chunks(todo, chunk_size(len(todo), workers))
    from concurrent.futures import as_completed
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        futs = [pool.submit(run_points, grid.base, grid.source, c) for c in chunks]
        for f in as_completed(futs):
            yield f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _DaskClient(Protocol):
    """What the sweep uses of a distributed.Client, whose methods other than
    submit carry no annotations."""

    def nthreads(self) -> dict[str, int]: ...        # threads per worker address

    def submit(self, func: Callable[..., T], /, *args: object, pure: bool = ...) -> Future[T]: ...

    def cancel(self, futures: list[Future[Done]]) -> None: ...

    def close(self) -> None: ...


def _dask_client(scheduler: str | None,
                 dask_local: int | None) -> tuple[_DaskClient, LocalCluster | None]:
    """A client of the scheduler at ``scheduler``, or of a new LocalCluster of
    ``dask_local`` worker processes (returned too, to be closed after)."""
    from distributed import Client, LocalCluster
    # no-untyped-call: the constructors of distributed's Client and
    # LocalCluster carry no annotations
    if scheduler is not None:
        try:
            return Client(scheduler, timeout="10s"), None  # type: ignore[no-untyped-call]
        except OSError as err:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect: {err}") from None
    if dask_local is None or dask_local < 1:
        raise ConfigError("--dask-local: give at least one worker")
    cluster = LocalCluster(n_workers=dask_local,  # type: ignore[no-untyped-call]
                           threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster  # type: ignore[no-untyped-call]


def _execute_dask(grid: Grid, todo: Chunk, scheduler: str | None,
                  dask_local: int | None) -> Generator[Done, None, None]:
    _need("distributed", "--scheduler and --dask-local")
    from distributed import as_completed
    client, cluster = _dask_client(scheduler, dask_local)
    try:
        nworkers = max(1, sum(client.nthreads().values()))
        chunks = _chunks(todo, chunk_size(len(todo), nworkers))
        futs = [client.submit(run_points, grid.base, grid.source, c, pure=False)
                for c in chunks]
        try:
            # no-untyped-call: distributed's as_completed constructor carries no annotations
            done: Iterator[Future[Done]] = as_completed(futs)  # type: ignore[no-untyped-call]
            for f in done:
                yield f.result()
        except ImportError as err:
            client.cancel(futs)
            raise ConfigError(f"the dask workers cannot import hotmem ({err}); install it "
                              "where they run") from None
        except BaseException:
            client.cancel(futs)
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _chunks(items: list[T], n: int) -> list[list[T]]:
    return [items[i:i + n] for i in range(0, len(items), n)]


# ---------------------------------------------------------------- pictures

def plot_sweep(table: str | Path, x: str, y: str, out: str | Path,
               facet: str | None = None) -> Literal["line", "heatmap"]:
    """A line chart of a numeric metric (one line per combination of the other
    varying columns), or a heatmap of a text one such as step.N.outcome
    (x against the other varying axes).  Returns "line" or "heatmap"."""
    rows = read_table(table)
    if not rows:
        raise ConfigError(f"{table}: the table has no rows")
    cols = list(rows[0])
    for what, name in (("--x", x), ("--y", y), ("--facet", facet)):
        if name is not None and name not in cols:
            raise ConfigError(f"{what} {name!r} is not a column of {table}")
    _need("matplotlib", "--plot", "plot")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis_cols = table_axes(cols)
    others = [c for c in axis_cols if c not in (x, facet)
              and len({str(r[c]) for r in rows}) > 1]
    facets = _ordered({str(r[facet]) for r in rows}, rows, facet) if facet else [None]
    ys = [_number(r[y]) for r in rows if r[y] is not None]
    numeric = ys and all(v is not None for v in ys)
    fig, axs = plt.subplots(1, len(facets), figsize=(5.2 * len(facets), 4.2), squeeze=False,
                            sharey=True)
    xs_all = _ordered({str(r[x]) for r in rows}, rows, x)
    size_ticks = all(_SIZE_WITH_UNIT.match(v) for v in xs_all)
    for ax, fv in zip(axs[0], facets, strict=True):
        # fv is None exactly when there is no facet
        sub = rows if fv is None or facet is None else [r for r in rows if str(r[facet]) == fv]
        series: dict[tuple[str, ...], list[Row]] = {}
        for r in sub:
            series.setdefault(tuple(str(r[c]) for c in others), []).append(r)
        if numeric:
            for key, rs in series.items():
                pts = sorted(((_xval(r[x], size_ticks), _number(r[y])) for r in rs
                              if r[y] is not None), key=lambda t: t[0])
                label = ", ".join(f"{c}={v}" for c, v in zip(others, key, strict=True)) or y
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            if size_ticks:
                ax.set_xscale("log", base=2)
                ticks = sorted({_size(v) for v in xs_all})
                ax.set_xticks(ticks, [fmt_size(t) for t in ticks])
            ax.set_ylabel(y)
            ax.legend(fontsize=7)
        else:
            # "ok" first and green, each errno a colour of its own
            cats = sorted({str(r[y]) for r in rows}, key=lambda c: (c != "ok", c))
            keys = list(series)             # grid order
            grid = [[math.nan] * len(xs_all) for _ in keys]
            for k_i, key in enumerate(keys):
                for r in series[key]:
                    grid[k_i][xs_all.index(str(r[x]))] = cats.index(str(r[y]))
            from matplotlib.colors import ListedColormap
            palette = ["#e41a1c", "#377eb8", "#984ea3", "#ff7f00", "#a65628", "#f781bf",
                       "#999999", "#ffff33"]
            colours = [("#4daf4a" if c == "ok" else palette.pop(0) if palette else "#000000")
                       for c in cats]
            cmap = ListedColormap(colours)
            ax.imshow(grid, aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(cats) - 0.5,
                      interpolation="nearest")
            ax.set_xticks(range(len(xs_all)), xs_all, rotation=45, fontsize=7)
            ax.set_yticks(range(len(keys)), [", ".join(k) for k in keys], fontsize=7)
            ax.set_ylabel(", ".join(others))
            from matplotlib.patches import Patch
            ax.legend(handles=[Patch(color=cmap(i), label=c) for i, c in enumerate(cats)],
                      title=y, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_xlabel(x)
        if fv is not None:
            ax.set_title(f"{facet} = {fv}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return "line" if numeric else "heatmap"


def _ordered(values: set[str], rows: list[Row], col: str) -> list[str]:
    """Values in the order they first appear (grid order)."""
    order: dict[str, None] = {}
    for r in rows:
        order.setdefault(str(r[col]))
    return [v for v in order if v in values]


def _number(v: Cell) -> int | float | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    if v is None or isinstance(v, datetime.date | datetime.time):
        return None                         # float() refuses them
    try:
        return float(v)
    except (TypeError, ValueError):         # TypeError: a cell of a foreign table
        return None


_SIZE_WITH_UNIT = re.compile(r"^\d+[KMGTP]$")


def _size(v: Cell) -> int:
    return parse_size(v)


def _xval(v: Cell, size_ticks: bool) -> int | float | str:
    if size_ticks:
        return _size(v)
    n = _number(v)
    return n if n is not None else str(v)


def format_result(res: SweepResult, out: str | Path) -> str:
    return (f"wrote {out}: {len(res.rows)} rows ({res.ran} run now, {res.skipped} already "
            f"there, {res.errors} with an error)")


# ---------------------------------------------------------------- command line

def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``hotmem sweep``: its options live here so cli.py stays small."""
    sw = sub.add_parser("sweep", help="run a scenario over a grid of settings, or plot a sweep")
    sw.add_argument("grid", nargs="?", help="grid TOML file (base scenario and [axes])")
    sw.add_argument("--out", help="results table (.parquet or .csv); with --plot: the PNG "
                    "(default sweep.png)")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run on an existing dask.distributed cluster")
    where.add_argument("--dask-local", type=int, metavar="N",
                       help="run on a dask LocalCluster of N worker processes")
    sw.add_argument("--checkpoint", type=float, default=60.0, metavar="SECONDS",
                    help="rewrite --out at least this often (default 60)")
    sw.add_argument("--plot", metavar="RESULTS", help="draw a chart from a results table")
    sw.add_argument("--x", help="with --plot: the column along x (an axis)")
    sw.add_argument("--y", help="with --plot: the column to draw (a metric or step.N.outcome)")
    sw.add_argument("--facet", help="with --plot: one panel per value of this column")
    sw.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    import sys
    if args.plot:
        if args.grid:
            raise ConfigError("sweep: give a grid file or --plot RESULTS, not both")
        if not args.x or not args.y:
            raise ConfigError("sweep --plot: give --x AXIS and --y METRIC")
        out = args.out or "sweep.png"
        kind = plot_sweep(args.plot, args.x, args.y, out, facet=args.facet)
        print(f"wrote {out} ({kind} chart of {args.y} against {args.x})")
        return 0
    if not args.grid:
        raise ConfigError("sweep: give a grid file (or --plot RESULTS)")
    if not args.out:
        raise ConfigError("sweep: give --out RESULTS.parquet or RESULTS.csv")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("sweep: --workers must be at least 1")
    grid = load_grid(args.grid)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm
            # points done, rate and ETA; tqdm stays silent when stderr is no terminal
            bar = tqdm(total=total, initial=done, unit="pt", desc="sweep", file=sys.stderr,
                       disable=None, smoothing=0.1)
        else:
            bar.update(done - bar.n)

    try:
        res = sweep(grid, args.out, workers=args.workers, scheduler=args.scheduler,
                    dask_local=args.dask_local, progress=progress,
                    checkpoint_seconds=args.checkpoint)
    except KeyboardInterrupt:
        print(f"hotmem: interrupted; the points done so far are in {args.out} and a rerun "
              "skips them", file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    print(format_result(res, args.out))
    return 0
