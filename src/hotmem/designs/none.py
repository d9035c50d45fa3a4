"""Hot-add without memmap on memory: the memmap of every block comes from
memory that is already online (vmemmap_populate from the buddy), as in every
kernel before 5.13 and with memory_hotplug.memmap_on_memory=N since."""
from __future__ import annotations

from ..errors import ConfigError
from ..kernel import Kernel
from .mainline import Mainline


class NoMemmapOnMemory(Mainline):
    """Mainline with memmap_on_memory=N."""

    name = "none"

    def check_settings(self, kernel: Kernel, memmap_on_memory: str) -> None:
        if memmap_on_memory != "n":
            raise ConfigError(f"design none is hot-add without memmap on memory; "
                              f"memmap_on_memory={memmap_on_memory} contradicts it")

    def scenario_overrides(self, machine: dict[str, object]) -> dict[str, object]:
        return {"memmap_on_memory": "n"}

DESIGN = NoMemmapOnMemory()
