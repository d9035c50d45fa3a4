# Stub for the compiled module hotmem._blockops (see _blockops.pyx).
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from ._core import PageState
from .mmzone import Zone
from .state import MachineState

class BlockOps:
    nr_onlined: int   # onlines and offlines done by this path
    nr_offlined: int
    nr_min_free_kbytes: int   # of them, those whose watermark inputs changed

    def __init__(self, pages: PageState, state: npt.NDArray[np.uint8],
                 zone: npt.NDArray[np.int16], nid: npt.NDArray[np.int16],
                 early: npt.NDArray[np.bool_], group: npt.NDArray[np.int32],
                 altmap: npt.NDArray[np.bool_], alt_free: npt.NDArray[np.int64],
                 sec_flags: npt.NDArray[np.uint8], zones: list[Zone],
                 online_types: dict[str, int], consts: dict[str, int],
                 wmark_min: Callable[[MachineState], None]) -> None: ...
    def online(self, m: MachineState, blk: object, online_type: object) -> Zone | None: ...
    def offline(self, m: MachineState, blk: object) -> bool: ...
    def init_per_zone_wmark_min(self, m: MachineState) -> None: ...
