"""Parsing of sizes and addresses as users write them ("128M", "0x140000000")."""
import re

from .errors import ConfigError

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)


def parse_size(value, what: str = "size") -> int:
    """Bytes from an int or a string such as ``"4G"``, ``"128MiB"``, ``"0x8000000"``."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a size, got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        s = value.strip()
        if s.lower().startswith("0x"):
            try:
                n = int(s, 16)
            except ValueError:
                raise ConfigError(f"{what}: {value!r} is not a hex number") from None
        else:
            m = _SIZE_RE.match(s)
            if not m:
                raise ConfigError(f"{what}: {value!r} is not a size (use e.g. 128M, 4G, 1T)")
            n = int(m.group(1)) * _SUFFIX[m.group(2).upper()]
    else:
        raise ConfigError(f"{what}: expected a size, got {value!r}")
    if n < 0:
        raise ConfigError(f"{what}: {value!r} is negative")
    return n


def parse_addr(value, what: str = "address") -> int:
    """A physical address: an int, ``"0x..."`` or a size-like string."""
    return parse_size(value, what)


def fmt_size(n: int) -> str:
    """Bytes as the largest exact binary unit: 134217728 -> '128M'."""
    for suffix in ("P", "T", "G", "M", "K"):
        unit = _SUFFIX[suffix]
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)
