"""Errors that carry the kernel's errno name."""
import errno as _errno


class HotplugError(Exception):
    """A memory hotplug operation failed the way the kernel fails it.

    ``errno`` is the kernel's errno name (``"EBUSY"``, ``"EINVAL"``, ...); the
    message names the block or pfn and why.  The machine is left exactly as it
    was before the operation.
    """

    def __init__(self, errno: str, message: str, *, pfn: int | None = None,
                 block: int | None = None):
        if not hasattr(_errno, errno):
            raise ValueError(f"unknown errno name {errno!r}")
        super().__init__(f"{errno}: {message}")
        self.errno = errno
        self.message = message
        self.pfn = pfn
        self.block = block

    @property
    def errno_value(self) -> int:
        """The numeric errno, as a syscall would return it negated."""
        return int(getattr(_errno, self.errno))


class ConfigError(ValueError):
    """Bad input: an unknown arch or era, a malformed scenario, a bad size."""
