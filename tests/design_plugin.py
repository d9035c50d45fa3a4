"""A design written outside hotmem, as a patch under review would be: the
mainline design subclassed without changes (tests/test_designs.py loads it
through module:attribute and file.py:attribute)."""
from hotmem.designs.mainline import Mainline


class PatchedMainline(Mainline):
    """Mainline, unchanged."""


class RefusesEverything(Mainline):
    """A design whose verdict is always no: a plug-in that does change something."""

    name = "refuses-everything"

    def verdict(self, m, size):
        return False, "this patch never self-hosts the memmap"
