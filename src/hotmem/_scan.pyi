# Stub for the compiled module hotmem._scan (see _scan.pyx).  Arrays are numpy;
# the C element type of each typed memoryview is in the comment.
import numpy as np
import numpy.typing as npt

from ._core import PageState

def vmemmap_per_page(vmemmap: npt.NDArray[np.uint64],  # const uint64_t[::1]
                     nr_sections: int, pages_per_section: int,
                     out: npt.NDArray[np.int64]) -> None: ...  # int64_t[::1]
def vmemmap_wordwise(vmemmap: npt.NDArray[np.uint64], nr_sections: int,
                     pages_per_section: int, out: npt.NDArray[np.int64]) -> None: ...
def vmemmap_prefix(vmemmap: npt.NDArray[np.uint64], nr_sections: int,
                   pages_per_section: int, out: npt.NDArray[np.int64]) -> None: ...
def section_counts(vmemmap: npt.NDArray[np.uint64], nr_sections: int,
                   pages_per_section: int,
                   out: npt.NDArray[np.int32]) -> None: ...  # int32_t[::1]
def vmemmap_from_summary(summary: npt.NDArray[np.int32],  # const int32_t[::1]
                         first_section: int, nr_sections: int,
                         out: npt.NDArray[np.int64]) -> None: ...
def vmemmap_from_blocks(nr_vmemmap_pages: npt.NDArray[np.int64],  # const int64_t[::1]
                        first_section: int, nr_sections: int, sections_per_block: int,
                        pages_per_section: int, out: npt.NDArray[np.int64]) -> None: ...
def has_unmovable_per_page(reserved: npt.NDArray[np.uint64], vmemmap: npt.NDArray[np.uint64],
                           unmovable: npt.NDArray[np.uint64], s: int, e: int,
                           movable_zone: bool, skip_vmemmap: bool) -> int: ...
def has_unmovable_wordwise(reserved: npt.NDArray[np.uint64], vmemmap: npt.NDArray[np.uint64],
                           unmovable: npt.NDArray[np.uint64], s: int, e: int,
                           movable_zone: bool, skip_vmemmap: bool) -> int: ...
def first_not_free_per_page(buddy: npt.NDArray[np.uint64], vmemmap: npt.NDArray[np.uint64],
                            s: int, e: int, skip_vmemmap: bool) -> int: ...
def first_not_free_wordwise(buddy: npt.NDArray[np.uint64], vmemmap: npt.NDArray[np.uint64],
                            s: int, e: int, skip_vmemmap: bool) -> int: ...
def vmemmap_live(pages: PageState, strategy: str, start_pfn: int, nr_sections: int,
                 pages_per_section: int, out: npt.NDArray[np.int64]) -> None: ...
def has_unmovable_live(pages: PageState, s: int, e: int, movable_zone: bool,
                       skip_vmemmap: bool, per_page: bool) -> int: ...
def first_not_free_live(pages: PageState, s: int, e: int, skip_vmemmap: bool,
                        per_page: bool) -> int: ...
def popcnt_instruction() -> bool: ...
def read_words(words: npt.NDArray[np.uint64]) -> int: ...  # uint64_t
