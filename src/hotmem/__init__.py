"""hotmem: a simulator of Linux memory hotplug with memmap on memory.

>>> from hotmem import Machine
>>> m = Machine("x86_64", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
>>> m.add(0x100000000, "128M")
[32]
"""
from .errors import ConfigError, HotplugError
from .machine import Machine

__all__ = ["Machine", "HotplugError", "ConfigError"]
__version__ = "0.1.0"
