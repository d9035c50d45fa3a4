"""Benchmark sizes and shared helpers (not a conftest.py: tests/ imports its own
conftest by name, and a second one here would shadow it).

The default run (``--benchmark-disable``, as CI runs it) executes every benchmark
once at 1 GiB.  Timing runs choose sizes by environment:

    HOTMEM_BENCH_FULL=1              1G, 64G and 1T
    HOTMEM_BENCH_SIZES=64G,1T        any list
    HOTMEM_BENCH_64T=1               adds the 64 TiB lifecycle / peak-RSS run

    HOTMEM_BENCH_FULL=1 pytest benchmarks --benchmark-enable --benchmark-group-by=group \\
        --benchmark-columns=median,min,max,rounds
"""
import os

from hotmem import bench
from hotmem.units import parse_size


def bench_sizes() -> list[int]:
    if os.environ.get("HOTMEM_BENCH_SIZES"):
        names = os.environ["HOTMEM_BENCH_SIZES"].split(",")
    elif os.environ.get("HOTMEM_BENCH_FULL") == "1":
        names = list(bench.SIZES)
    else:
        names = ["1G"]
    return [parse_size(n.strip(), "HOTMEM_BENCH_SIZES") for n in names if n.strip()]


SIZES = bench_sizes()
BIG = os.environ.get("HOTMEM_BENCH_64T") == "1"


def median_of(benchmark, fallback: float) -> float:
    """The benchmark's own median when it timed, else the single-run fallback."""
    stats = getattr(benchmark, "stats", None)
    if not getattr(benchmark, "disabled", False) and stats is not None:
        return stats.stats.median
    return fallback


def info(case, t: float) -> dict:
    """extra_info of one strategy run: pages, bytes touched, and the two ratios
    measured in this process."""
    ref, ref_pages = bench.reference_time(case.path, case.strategy if case.path == "free" else "",
                                          case.size)
    bound = bench.bound_time(case.bytes_touched)
    return {
        "pages": case.pages, "bytes_touched": case.bytes_touched,
        "ratio_vs_reference": ref / t, "reference_s": ref,
        "ref_extrapolated_from_pages": 0 if ref_pages == case.pages else ref_pages,
        "ratio_vs_bandwidth_bound": t / bound, "bound_s": bound,
        "bound_bytes_per_s": case.bytes_touched / bound,
    }
