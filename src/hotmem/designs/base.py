"""The design interface: what differs between ways of placing the memmap of
hot-added memory.  A design is an object; the operations ask it, they never
compare its name.

The hooks, in the order a block lives through them:

``verdict(m, size)``
    would an add of ``size`` bytes get memmap on memory, and why (not).
``rejects_unsupported_request(m)``
    does a driver that insists on MHP_MEMMAP_ON_MEMORY get EINVAL when the
    verdict is no (mainline before 6.6), or a silent fallback?
``add_memory(m, spfn, epfn, nid, supported, group)``
    memmap placement: check what can still fail (raise HotplugError, nothing
    changed), then register the range and place its memmap; per-device state
    goes in ``group.design_state``.
``online_block(m, blk, online_type)``
    the online ranges and the scan that finds them (memory_block_online).
``offline_check(m, blk)`` / ``offline_block(m, blk)``
    every reason the offline fails (with the design's scan skips), then the
    offline itself.
``remove_memory(m, spfn, epfn, blocks)``
    the teardown, after the generic checks of try_remove_memory.
``memmap_kpageflags(m)``
    the KPF_* bits /proc/kpageflags shows on a self-hosted memmap page.
``vmemmap_pages_by_block(m)``, ``hazards(m)``, ``format_hazard(h)``,
``misaligned_chunks(m)``
    what reports and comparisons show: where the memmap sits, blocks that hold
    others' memmap, buddy blocks freed misaligned.

Class attributes: ``batchable`` (runs of blocks may be onlined / offlined in
one pass), ``has_cross_block_memmap`` (a block can hold another's memmap),
``memmap_stays_marked_offline`` (memmap pages keep their mark while the block
is offline), ``free_blocks_aligned`` (every free buddy block is naturally
aligned), ``default_kernel`` and ``default_memmap_on_memory`` (what a machine
gets when the scenario does not say).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from ..constants import IntArray
from ..errors import ConfigError, HotplugError
from ..kernel import Kernel
from ..mmzone import Zone
from ..state import Hazard, MachineState, MemoryGroup


class Design(ABC):
    """Base of every design; see the module docstring for the hooks."""

    name = "design"
    @property
    def batchable(self) -> bool:
        """Runs of blocks may take the compiled one-pass path instead of this
        design's online_block / do_offline.  A fact of the design: a
        machine's one-block path (_blockops) reads it once per design object."""
        return False
    has_cross_block_memmap = False
    memmap_stays_marked_offline = False
    free_blocks_aligned = True
    default_kernel: str | None = None
    default_memmap_on_memory = "n"
    options: tuple[str, ...] = ()

    def configured(self, **options: object) -> Design:
        """This design with its options set (scenario [machine] keys such as
        ``rfc_refuse_hazard``); options of other designs may only be false."""
        for k, v in options.items():
            if v:
                raise ConfigError(f"{k}: an option of another design; design {self.name} "
                                  f"takes {', '.join(self.options) or 'no options'}")
        return self

    def check_settings(self, kernel: Kernel, memmap_on_memory: str) -> None:
        """ConfigError when the machine's kernel or mode cannot carry this design
        (by default every kernel and mode can)."""
        return None

    def scenario_overrides(self, machine: dict[str, object]) -> dict[str, object]:
        """Machine settings ``hotmem compare`` uses to run a scenario under
        this design (the scenario's own [machine] table is ``machine``)."""
        return {}

    @abstractmethod
    def verdict(self, m: MachineState, size: int | None) -> tuple[bool, str]:
        ...

    def rejects_unsupported_request(self, m: MachineState) -> bool:
        return False

    @abstractmethod
    def add_memory(self, m: MachineState, spfn: int, epfn: int, nid: int,
                   supported: bool, group: MemoryGroup) -> None:
        ...

    @abstractmethod
    def online_block(self, m: MachineState, blk: int, online_type: int) -> Zone:
        ...

    @abstractmethod
    def offline_check(self, m: MachineState, blk: int) -> HotplugError | None:
        ...

    def offline_block(self, m: MachineState, blk: int) -> None:
        err = self.offline_check(m, blk)
        if err is not None:
            raise err
        self.do_offline(m, blk)

    @abstractmethod
    def do_offline(self, m: MachineState, blk: int) -> None:
        """The offline of a block whose offline_check() passed."""

    @abstractmethod
    def remove_memory(self, m: MachineState, spfn: int, epfn: int, blocks: IntArray) -> None:
        ...

    def memmap_kpageflags(self, m: MachineState) -> int:
        return 0

    def vmemmap_pages_by_block(self, m: MachineState) -> dict[int, int]:
        return {}

    def hazards(self, m: MachineState) -> list[Hazard]:
        return []

    def format_hazard(self, h: Hazard) -> str:
        return f"memory{h['holder']}: {h['risk']}"

    def misaligned_chunks(self, m: MachineState) -> dict[int, list[tuple[int, int]]]:
        return {}

    def __repr__(self) -> str:
        return f"<design {self.name}>"
