"""Parsing of sizes and addresses as users write them ("128M", "0x140000000")."""
import re

from .errors import ConfigError
from .validate import U64, is_int, short

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
# ASCII digits only (int() would take Arabic-Indic or fullwidth digits), and
# few enough of them that int() never meets Python's digit limit
_SIZE_RE = re.compile(r"(?:0[xX]([0-9a-fA-F]{1,16})"
                      r"|([0-9]{1,20})[ \t]*([KMGTPkmgtp]?)(?:[iI]?[Bb])?)")
# the longest size string worth reading: "18446744073709551615 PiB" and spaces
MAX_SIZE_CHARS = 40


def parse_size(value: object, what: str = "size") -> int:
    """Bytes from an int or a string such as ``"4G"``, ``"128MiB"``, ``"0x8000000"``;
    below 2**64."""
    if is_int(value):
        n = int(value)
    elif isinstance(value, str):
        s = value.strip(" \t")
        m = _SIZE_RE.fullmatch(s) if len(s) <= MAX_SIZE_CHARS else None
        if not m:
            raise ConfigError(f"{what}: {short(value)} is not a size (use e.g. 128M, 4G, 1T "
                              "or 0x8000000)")
        if m.group(1) is not None:
            n = int(m.group(1), 16)
        else:
            n = int(m.group(2)) * _SUFFIX[m.group(3).upper()]
    else:
        raise ConfigError(f"{what}: expected a size, got {short(value)}")
    if n < 0:
        raise ConfigError(f"{what}: {short(value)} is negative")
    if n >= U64:
        raise ConfigError(f"{what}: {short(value)} is 2**64 bytes or more")
    return n


def parse_addr(value: object, what: str = "address") -> int:
    """A physical address: an int, ``"0x..."`` or a size-like string."""
    return parse_size(value, what)


def fmt_size(n: int) -> str:
    """Bytes as the largest exact binary unit: 134217728 -> '128M'."""
    for suffix in ("P", "T", "G", "M", "K"):
        unit = _SUFFIX[suffix]
        if n and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)
