"""Build the compiled core; everything else is in pyproject.toml."""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

# HOTMEM_DEBUG=1 turns bounds checks back on for debugging the core.
debug = os.environ.get("HOTMEM_DEBUG") == "1"
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": debug,
}

setup(
    ext_modules=cythonize(
        [Extension("hotmem._core", ["src/hotmem/_core.pyx"], extra_compile_args=["-O3"]),
         Extension("hotmem._scan", ["src/hotmem/_scan.pyx"], extra_compile_args=["-O3"]),
         Extension("hotmem._blockops", ["src/hotmem/_blockops.pyx"],
                   extra_compile_args=["-O3"])],
        compiler_directives=directives,
        include_path=["src"],
    )
)
