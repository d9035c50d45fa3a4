"""Hot-add drivers, as plug-ins: what a driver passes to add_memory(), its
memory group, and whether it onlines the memory itself.

``get(name)`` returns a driver of ``op = "add"``: ``acpi`` (an ACPI memory
device, a DIMM) and ``direct`` (a caller that always passes
MHP_MEMMAP_ON_MEMORY).  ``make_device(spec)`` builds a device of a
``[[device]]`` table: acpi-dimm, virtio-mem, dax-kmem, dlpar, sclp-standby,
hv-balloon, xen-balloon (each in its own file, all on drivers.base.Device).
"""
from __future__ import annotations

from ..errors import ConfigError
from ..units import parse_addr, parse_size
from .acpi_dimm import ACPI_DIMM, DIRECT, AcpiDimmDevice
from .balloons import HvBalloon, XenBalloon
from .base import Device, Driver
from .dax_kmem import DaxKmem
from .dlpar import Dlpar
from .sclp_standby import SclpStandby
from .virtio_mem import VirtioMem

BUILTIN: dict[str, Driver] = {d.name: d for d in (ACPI_DIMM, DIRECT)}
NAMES = tuple(BUILTIN)
DEVICES: dict[str, type[Device]] = {c.driver: c for c in (
    AcpiDimmDevice, VirtioMem, DaxKmem, Dlpar, SclpStandby, HvBalloon, XenBalloon)}
DEVICE_KEYS = ("name", "driver", "start", "size", "node")

__all__ = ["Driver", "Device", "BUILTIN", "NAMES", "DEVICES", "get", "make_device"]


def get(name: str | Driver) -> Driver:
    """The driver called ``name``."""
    if isinstance(name, Driver):
        return name
    if isinstance(name, str) and name in BUILTIN:
        return BUILTIN[name]
    raise ConfigError(f"driver: {str(name)[:40]!r} is not one of {', '.join(NAMES)}")


def make_device(spec: dict[str, object]) -> Device:
    """A device from a ``[[device]]`` table (name, driver, start, size, node,
    and the driver's own keys)."""
    name = spec.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ConfigError("device: name must be a string of 1 to 64 characters")
    drv = spec.get("driver")
    if not isinstance(drv, str) or drv not in DEVICES:
        raise ConfigError(f"device {name}: driver {str(drv)[:40]!r} is not one of "
                          f"{', '.join(DEVICES)}")
    if "size" not in spec:
        raise ConfigError(f"device {name}: size is required")
    size = parse_size(spec["size"], f"device {name}: size")
    start = spec.get("start")
    nid = spec.get("node", 0)
    if isinstance(nid, bool) or not isinstance(nid, int) or not 0 <= nid < 1024:
        raise ConfigError(f"device {name}: node must be a node number")
    options = {k: v for k, v in spec.items() if k not in DEVICE_KEYS}
    return DEVICES[drv](name, None if start is None else parse_addr(start, f"device {name}: start"),
                        size, nid, options)
