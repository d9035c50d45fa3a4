"""Vmemmap finding and isolation checks: strategies side by side per size."""
import time

import pytest

from bench_support import SIZES, info, median_of
from hotmem import bench


def _cases(path):
    out = []
    for size in SIZES:
        paths = ["vmemmap"] if path == "vmemmap" else ["isolation"]
        for p in paths:
            for c in bench.cases_for(p, size):
                out.append(pytest.param(size, c.path, c.strategy,
                                        id=f"{c.path}-{bench.fmt_size(size)}-{c.strategy}"))
    return out


def _find(size, path, strategy):
    group = "vmemmap" if path == "vmemmap" else "isolation"
    return next(c for c in bench.cases_for(group, size)
                if c.path == path and c.strategy == strategy)


def _run(benchmark, size, path, strategy):
    case = _find(size, path, strategy)
    benchmark.group = f"{path} {bench.fmt_size(size)}"
    t0 = time.perf_counter()
    result = case.run(*case.args)
    once = time.perf_counter() - t0
    case.check(result)
    result = benchmark(case.run, *case.args)
    case.check(result)
    benchmark.extra_info.update(info(case, median_of(benchmark, once)))


@pytest.mark.parametrize("size,path,strategy", _cases("vmemmap"))
def test_vmemmap(benchmark, size, path, strategy):
    _run(benchmark, size, path, strategy)


@pytest.mark.parametrize("size,path,strategy", _cases("isolation"))
def test_isolation(benchmark, size, path, strategy):
    _run(benchmark, size, path, strategy)
