"""hotmem sweep: rows equal to separate `hotmem run --json` runs, on a process
pool and on dask.distributed; restart, failures, grid errors, atomic output."""
import json
import os

import pytest

from hotmem.cli import main
from hotmem.sweep import load_grid, read_table, sweep

BASE = """\
[machine]
arch = "x86_64"
kernel = "6.12"
boot_memory = "1G"
memmap_on_memory = "y"
on_error = "continue"

[[step]]
op = "add"
size = "1G"

[[step]]
op = "online"
blocks = "offline"
type = "online_movable"

[[step]]
op = "alloc"
zone = "Movable"
pages = 20000
seed = 1

[[step]]
op = "offline"
blocks = "online"
"""

GRID = """\
base = "base.toml"
[axes]
"machine.kernel" = ["6.1", "6.8", "6.12"]
"step.0.size" = ["1G", "16G", "64G"]
"machine.memmap_on_memory" = ["n", "y"]
"""
AXES = ["machine.kernel", "step.0.size", "machine.memmap_on_memory"]


def write_grid(d, grid=GRID, base=BASE):
    (d / "base.toml").write_text(base)
    (d / "grid.toml").write_text(grid)
    return d / "grid.toml"


def expected_row(point: dict, rep: dict) -> dict:
    """A `hotmem run --json` report as the sweep's row contract says, written
    out field by field (not with the sweep's own flattening)."""
    row = dict(point)
    for k, v in rep["machine"].items():
        row.setdefault(f"machine.{k}", v)
    for k, v in rep["meminfo_kB"].items():
        row[f"meminfo_kB.{k}"] = v
    row["totalram_pages"] = rep["totalram_pages"]
    for z in rep["zones"]:
        p = f"zones.{z['node']}/{z['zone']}"
        for k in ("zone_start_pfn", "spanned_pages", "present_pages", "present_early_pages",
                  "managed_pages", "nr_free_pages"):
            row[f"{p}.{k}"] = z[k]
        for order, n in enumerate(z["free_area"]["nr_free"]):
            row[f"{p}.free_area.nr_free.{order}"] = n
        for k, v in z["watermark"].items():
            row[f"{p}.watermark.{k}"] = v
    for s in rep["steps"]:
        row[f"step.{s['index']}.outcome"] = s["result"]
    return row


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("grid")
    write_grid(d)
    return d


@pytest.fixture(scope="module")
def pool_rows(grid_dir):
    out = grid_dir / "pool.parquet"
    assert main(["sweep", str(grid_dir / "grid.toml"), "--out", str(out), "--workers", "2"]) == 0
    return read_table(out)


def test_rows_equal_separate_runs(grid_dir, pool_rows, capsys):
    assert len(pool_rows) == 18
    import pandas as pd
    df = pd.read_parquet(grid_dir / "pool.parquet")        # loads as it is
    assert list(df.columns[:4]) == AXES + ["error"] and len(df) == 18
    assert str(df["meminfo_kB.MemTotal"].dtype) == "int64"
    capsys.readouterr()
    for row in pool_rows:
        point = {a: row[a] for a in AXES}
        text = BASE.replace('kernel = "6.12"', f'kernel = "{point["machine.kernel"]}"') \
                   .replace('size = "1G"', f'size = "{point["step.0.size"]}"') \
                   .replace('memmap_on_memory = "y"',
                            f'memmap_on_memory = "{point["machine.memmap_on_memory"]}"')
        p = grid_dir / "one.toml"
        p.write_text(text)
        main(["run", str(p), "--json"])
        rep = json.loads(capsys.readouterr().out)
        want = expected_row(point, rep)
        got = {k: v for k, v in row.items() if v is not None}
        assert got == want, point
    outcome = {(r["machine.kernel"], r["step.0.size"], r["machine.memmap_on_memory"]):
               r["step.0.outcome"] for r in pool_rows}
    # 64 GiB needs 1 GiB of memmap from the 1 GiB VM unless each block hosts its
    # own: from 6.8 (one altmap per block); before, only single-block adds did
    assert outcome["6.12", "64G", "n"] == "ENOMEM"
    assert outcome["6.8", "64G", "y"] == outcome["6.12", "64G", "y"] == "ok"
    assert outcome["6.1", "64G", "y"] == "ENOMEM"
    assert outcome["6.1", "16G", "y"] == "ok"


def test_dask_cluster_gives_the_same_rows(grid_dir, pool_rows):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        out = grid_dir / "dask.parquet"
        assert main(["sweep", str(grid_dir / "grid.toml"), "--out", str(out),
                     "--scheduler", cluster.scheduler_address]) == 0
    assert read_table(out) == pool_rows


def test_dask_local_and_csv(tmp_path, pool_rows):
    grid = write_grid(tmp_path, GRID.replace('["6.1", "6.8", "6.12"]', '["6.12"]'))
    out = tmp_path / "r.csv"
    assert main(["sweep", str(grid), "--out", str(out), "--dask-local", "2"]) == 0
    rows = read_table(out)
    want = [r for r in pool_rows if r["machine.kernel"] == "6.12"]
    assert len(rows) == len(want) == 6
    # CSV cells are text, empty when a column does not apply
    assert rows == [{k: (None if v is None else str(v)) for k, v in r.items()} for r in want]


def test_interrupted_sweep_restarts_where_it_stopped(tmp_path, pool_rows):
    grid = load_grid(write_grid(tmp_path))
    out = tmp_path / "r.parquet"
    seen = []

    def stop(done, total):
        seen.append(done)
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(grid, out, workers=1, progress=stop)
    partial = read_table(out)
    assert 0 < len(partial) < 18 and seen[0] == 0
    res = sweep(grid, out, workers=2)
    assert (res.skipped, res.ran, res.errors) == (len(partial), 18 - len(partial), 0)
    assert read_table(out) == pool_rows
    again = sweep(grid, out, workers=2)
    assert (again.skipped, again.ran) == (18, 0)
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_failing_point_is_recorded(tmp_path, capsys):
    grid = write_grid(tmp_path, 'base = "base.toml"\n[axes]\n'
                      '"machine.kernel" = ["6.1", "6.12"]\n'
                      '"machine.memmap_on_memory" = ["y", "force"]\n')
    out = tmp_path / "r.csv"
    assert main(["sweep", str(grid), "--out", str(out), "--workers", "1"]) == 0
    assert "4 rows (4 run now, 0 already there, 1 with an error)" in capsys.readouterr().out
    rows = {(r["machine.kernel"], r["machine.memmap_on_memory"]): r for r in read_table(out)}
    bad = rows["6.1", "force"]
    assert bad["error"] == (f"ConfigError: {tmp_path / 'base.toml'}: [machine] memmap_on_memory: "
                            "memmap_on_memory=force needs kernel 6.6 or later "
                            "(kernel 6.1 parses the parameter as a bool)")
    assert bad["step.0.outcome"] is None and bad["meminfo_kB.MemTotal"] is None
    assert rows["6.12", "force"]["error"] is None
    assert rows["6.12", "force"]["step.0.outcome"] == "ok"


def test_seed_and_range_axes_are_deterministic(tmp_path):
    no_offline = BASE[:BASE.index('[[step]]\nop = "offline"')]
    grid = write_grid(tmp_path, 'base = "base.toml"\n[axes]\n'
                      'seed = {start = 1, stop = 3}\n'
                      '"step.0.size" = {start = "512M", stop = "2G", factor = 2}\n', no_offline)
    g = load_grid(grid)
    assert g.axes == {"seed": [1, 2, 3], "step.0.size": ["512M", "1G", "2G"]}
    one = sweep(g, None, workers=1).rows
    two = sweep(g, None, workers=2).rows
    assert one == two and len(one) == 9
    free = {(r["seed"], r["step.0.size"]): tuple(
        r[f"zones.0/Movable.free_area.nr_free.{o}"] for o in range(11)) for r in one}
    # the alloc step's placement follows the seed
    assert free[1, "2G"] != free[2, "2G"]
    assert all(r["step.2.outcome"] == "ok" for r in one)


@pytest.mark.parametrize("grid, key", [
    ('base = "base.toml"\n[axes]\n"machine.nope" = [1]\n', "machine.nope"),
    ('base = "base.toml"\n[axes]\n"step.9.size" = ["1G"]\n', "step.9.size"),
    ('base = "base.toml"\n[axes]\n"step.0.blocks" = [[1]]\n', "step.0.blocks"),
    ('base = "base.toml"\n[axes]\n"step.1.blocks" = ["1-x"]\n', "step.1.blocks"),
    ('base = "base.toml"\n[axes]\n"step.0.size" = ["1Q"]\n', "step.0.size"),
    ('base = "base.toml"\n[axes]\n"machine.kernel" = []\n', "machine.kernel"),
    ('base = "base.toml"\n[axes]\ndesign = ["mine"]\n', "design"),
    ('base = "base.toml"\n[axes]\nseed = ["a"]\n', "seed"),
    ('base = "base.toml"\n[axes]\n"step.0.size" = {start = "1G"}\n', "step.0.size"),
    ('base = "nothere.toml"\n[axes]\nseed = [1]\n', "base"),
    ('base = "base.toml"\nextra = 1\n[axes]\nseed = [1]\n', "extra"),
    ('base = "base.toml"\n[axes]\n"machine.kernel" = ["6.12"]\n', "--out"),
])
def test_bad_grid_exit_2_naming_the_key(tmp_path, capsys, grid, key):
    g = write_grid(tmp_path, grid)
    out = tmp_path / ("nodir/r.csv" if key == "--out" else "r.csv")
    assert main(["sweep", str(g), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hotmem: error: ") and err.count("\n") == 1 and key in err
    assert not (tmp_path / "r.csv").exists()


def test_output_symlink_is_refused(tmp_path, capsys):
    g = write_grid(tmp_path, GRID.replace('["6.1", "6.8", "6.12"]', '["6.12"]'))
    target = tmp_path / "elsewhere.csv"
    target.write_text("keep\n")
    (tmp_path / "r.csv").symlink_to(target)
    assert main(["sweep", str(g), "--out", str(tmp_path / "r.csv")]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert target.read_text() == "keep\n"


def test_design_axis_uses_design_overrides(tmp_path):
    g = load_grid(write_grid(tmp_path, 'base = "base.toml"\n[axes]\n'
                             'design = ["none", "mainline"]\n"step.0.size" = ["64G"]\n'))
    rows = {r["design"]: r for r in sweep(g, None, workers=1).rows}
    assert rows["none"]["machine.memmap_on_memory"] == "n"
    assert rows["none"]["step.0.outcome"] == "ENOMEM"
    assert rows["mainline"]["machine.memmap_on_memory"] == "y"
    assert rows["mainline"]["step.0.outcome"] == "ok"


def test_plot_line_and_heatmap(grid_dir, pool_rows, tmp_path, capsys):
    table = grid_dir / "pool.parquet"
    line = tmp_path / "line.png"
    assert main(["sweep", "--plot", str(table), "--x", "step.0.size",
                 "--y", "meminfo_kB.MemTotal", "--facet", "machine.kernel",
                 "--out", str(line)]) == 0
    assert "line chart" in capsys.readouterr().out
    heat = tmp_path / "heat.png"
    assert main(["sweep", "--plot", str(table), "--x", "step.0.size",
                 "--y", "step.0.outcome", "--out", str(heat)]) == 0
    assert "heatmap chart" in capsys.readouterr().out
    for p in (line, heat):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["sweep", "--plot", str(table), "--x", "step.0.size", "--y", "nope",
                 "--out", str(heat)]) == 2
    assert "--y 'nope'" in capsys.readouterr().err


def test_output_of_other_axes_is_refused(tmp_path, capsys):
    g = write_grid(tmp_path, GRID.replace('["6.1", "6.8", "6.12"]', '["6.12"]'))
    out = tmp_path / "r.csv"
    assert main(["sweep", str(g), "--out", str(out), "--workers", "1"]) == 0
    first = out.read_bytes()
    assert out.read_text().splitlines()[0].startswith(
        "machine.kernel,step.0.size,machine.memmap_on_memory,error,machine.arch,")
    g2 = write_grid(tmp_path, 'base = "base.toml"\n[axes]\n"step.0.size" = ["1G"]\n')
    assert main(["sweep", str(g2), "--out", str(out)]) == 2
    assert ("holds a sweep over other axes (machine.kernel, step.0.size, "
            "machine.memmap_on_memory, not step.0.size)") in capsys.readouterr().err
    assert out.read_bytes() == first


def test_table_mode_follows_umask(tmp_path):
    g = load_grid(write_grid(tmp_path, 'base = "base.toml"\n[axes]\n"step.0.size" = ["1G"]\n'))
    old = os.umask(0o022)
    try:
        sweep(g, tmp_path / "r.csv", workers=1)
    finally:
        os.umask(old)
    assert (tmp_path / "r.csv").stat().st_mode & 0o777 == 0o644
