"""The ``Machine`` facade: a machine with boot memory online, and the memory
hotplug operations on it, each delegated to the module named after the
kernel file that does it (memory_hotplug, memory, page_alloc)."""
from __future__ import annotations

from collections.abc import Iterable

from . import designs, drivers
from .arch import Arch
from .constants import IntArray, MemmapMode
from .designs.base import Design
from .drivers import make_device
from .drivers.base import Device, Driver
from .errors import HotplugError
from .kernel import DEFAULT_KERNEL, Kernel
from .memblock import boot
from .memory import BlockResults, offline_blocks, online_blocks
from .memory_hotplug import offline_block, online_block, remove_memory, setup_block_ops
from .mmzone import Zone
from .page_alloc import (
    alloc_pages,
    free_allocated,
    init_per_zone_wmark_min,
    lowmem_reserve,
    zone_nr_free_pages,
)
from .state import MachineState
from .units import parse_size


class Machine(MachineState):
    """A machine with boot memory online on node 0, ready for memory hotplug.

    >>> m = Machine("x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    >>> m.block_size == 128 << 20
    True
    """

    def __init__(self, arch: str | Arch = "x86_64", kernel: str | Kernel | None = None,
                 boot_memory: int | str = "4G", memmap_on_memory: object = None,
                 online_policy: str = "contig-zones", auto_movable_ratio: int = 301,
                 auto_online_blocks: str = "offline", design: str | Design = "mainline",
                 block_size: int | str | None = None, nr_nodes: int = 1,
                 movable_node: bool = False, hypervisor: bool = True,
                 max_memory: int | str | None = None, thp: bool = True, backend: str = "fast",
                 auto_movable_numa_aware: bool = True, **design_options: object) -> None:
        d = designs.get(design, **design_options)
        k = Kernel.parse(kernel if kernel is not None else (d.default_kernel or DEFAULT_KERNEL))
        super().__init__(arch, k, d, boot_memory,
                         d.default_memmap_on_memory if memmap_on_memory is None
                         else memmap_on_memory,
                         online_policy, auto_movable_ratio, auto_online_blocks, block_size,
                         nr_nodes, movable_node, hypervisor, max_memory, thp, backend,
                         auto_movable_numa_aware)
        d.check_settings(k, self.memmap_on_memory)
        setup_block_ops(self)
        boot(self)

    # ------------------------------------------------------------------ accounting

    def init_per_zone_wmark_min(self) -> None:
        """init_per_zone_wmark_min() (page_alloc)."""
        init_per_zone_wmark_min(self)

    def lowmem_reserve(self, zone: Zone) -> list[int]:
        """zone->lowmem_reserve[] (page_alloc)."""
        return lowmem_reserve(self, zone)

    def zone_free_pages(self, zone: Zone) -> int:
        """NR_FREE_PAGES of a zone (page_alloc.zone_nr_free_pages)."""
        return zone_nr_free_pages(self, zone)

    def mode_verdict(self, size: int | None = None) -> tuple[bool, str]:
        """Would an add of ``size`` bytes self-host its memmap?"""
        return self.design.verdict(self, size)

    # ------------------------------------------------------------------ operations

    def add(self, start: int | str | None = None, size: int | str = "128M", nid: int = 0,
            driver: str | Driver = "acpi") -> list[int]:
        """Hot-add one memory device through ``driver``; returns the new block ids."""
        return drivers.get(driver).add(self, start, size, nid)

    def online(self, blk: int, online_type: str = "online") -> Zone:
        """Write ``online_type`` to memoryN/state; returns the zone."""
        return online_block(self, blk, online_type)

    def offline(self, blk: int) -> None:
        """Write ``offline`` to memoryN/state."""
        offline_block(self, blk)

    def online_blocks(self, blocks: Iterable[object], online_type: str = "online",
                      stop_on_error: bool = True) -> BlockResults:
        """Online many blocks in order, as one by one; (block, error or None) each."""
        return online_blocks(self, blocks, online_type, stop_on_error)

    def offline_blocks(self, blocks: Iterable[object],
                       stop_on_error: bool = True) -> BlockResults:
        """Offline many blocks in order, as one by one; (block, error or None) each."""
        return offline_blocks(self, blocks, stop_on_error)

    def remove(self, start: int | str, size: int | str) -> None:
        """Hot-remove a range (ACPI eject of a DIMM): try_remove_memory."""
        remove_memory(self, start, size)

    # ------------------------------------------------------------------ devices

    def attach(self, device: Device | dict[str, object]) -> list[int]:
        """Bring up a hot-plug device (a ``[[device]]`` table or a Device)
        through its driver; returns the memory blocks it added."""
        dev = device if isinstance(device, Device) else make_device(device)
        if dev.name in self.devices:
            raise HotplugError("EEXIST", f"device {dev.name} is already attached")
        return dev.attach(self)

    def device(self, name: str) -> Device:
        """The attached device called ``name``."""
        dev = self.devices.get(name)
        if not isinstance(dev, Device):
            raise HotplugError("ENODEV", f"no device {str(name)[:40]!r} is attached")
        return dev

    def resize(self, name: str, size: int | str) -> list[int]:
        """A new requested size for a device (virtio-mem requested_size, a
        balloon's target); returns the blocks added or removed."""
        return self.device(name).resize(self, parse_size(size, "size"))

    def set(self, name: str, key: str, value: object) -> None:
        """A write to a device attribute (dax's memmap_on_memory, ...)."""
        self.device(name).set(self, key, value)

    def detach(self, name: str) -> list[int]:
        """The device goes away through its driver; returns the blocks removed."""
        return self.device(name).detach(self)

    def alloc(self, pages: int, kind: str = "movable", zone: str | None = None,
              placement: str = "random", seed: int = 0, nid: int = 0) -> IntArray:
        """Allocate pages (movable user pages or unmovable kernel pages)."""
        return alloc_pages(self, pages, kind=kind, zone=zone, placement=placement,
                           seed=seed, nid=nid)

    def free(self, pages: int | str | None = None, kind: str = "movable",
             zone: str | None = None, seed: int = 0, nid: int = 0) -> IntArray:
        """Free allocated pages (``pages`` of them at random, or all)."""
        return free_allocated(self, pages, kind=kind, zone=zone, seed=seed, nid=nid)


__all__ = ["Machine", "MemmapMode"]
