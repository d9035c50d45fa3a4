"""Input validation: sizes, kernel releases, scenario values, the API checks
of hotmem.validate, and the exact one-line messages."""
import numpy as np
import pytest

from hotmem.errors import ConfigError, HotplugError
from hotmem.kernel import Kernel
from hotmem.machine import Machine
from hotmem.scenario import load_scenario, loads_scenario, run_scenario
from hotmem.units import parse_size
from hotmem.validate import (
    check_block_ids,
    check_count,
    check_node,
    check_remove_range,
    check_seed,
    clip,
    short,
)

# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("text,n", [
    ("128M", 128 << 20), ("4G", 4 << 30), ("128MiB", 128 << 20), ("128mb", 128 << 20),
    (" 1T ", 1 << 40), ("0x8000000", 0x8000000), ("0XFFFFFFFFFFFFFFFF", (1 << 64) - 1),
    ("16P", 16 << 50), ("4096", 4096), ("18446744073709551615", (1 << 64) - 1),
    (0, 0), (np.int64(5), 5),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad,msg", [
    ("\u0661G", "size: '\u0661G' is not a size"),              # Arabic-Indic one
    ("\uff11G", "size: '\uff11G' is not a size"),              # fullwidth one
    ("9" * 5000, "size: '" + "9" * 40 + "'... (5000 characters) is not a size"),
    ("0x" + "f" * 17, "is not a size"),
    ("18446744073709551616", "is 2**64 bytes or more"),
    ("16384P", "is 2**64 bytes or more"),
    (1 << 64, "size: 18446744073709551616 is 2**64 bytes or more"),
    ("HUGE", "size: <16610-bit number> is 2**64 bytes or more"),
    (-1, "size: -1 is negative"),
    (True, "size: expected a size, got True"),
    (1.5, "size: expected a size, got 1.5"),
    (["1G"], "size: expected a size, got ['1G']"),
    ("1G\n2G", "size: '1G\\n2G' is not a size"),
])
def test_parse_size_refuses(bad, msg):
    bad = 10 ** 5000 if bad == "HUGE" else bad    # pytest cannot name a test after it
    with pytest.raises(ConfigError) as ei:
        parse_size(bad)
    assert msg in str(ei.value) and "\n" not in str(ei.value) and len(str(ei.value)) < 200


# ---------------------------------------------------------------- kernel releases

@pytest.mark.parametrize("text,k", [("6.12", (6, 12)), ("6.1.192", (6, 1)),
                                    ("6.12.117+deb12-amd64", (6, 12)), ("6.8-rc3", (6, 8)),
                                    (" 5.13 ", (5, 13)), ("4.20", (4, 20)),
                                    ("6.1.0-28-amd64", (6, 1)), ("6.8.0-45-generic", (6, 8)),
                                    ("5.14.0-427.13.1.el9_4.x86_64", (5, 14))])
def test_kernel_parse(text, k):
    assert (Kernel.parse(text).major, Kernel.parse(text).minor) == k


@pytest.mark.parametrize("bad,msg", [
    ("6.12.x.y", "kernel: '6.12.x.y' is not a release such as '6.12'"),
    ("\u0666.\u0661\u0662", "is not a release"),
    ("6" * 5000 + ".1", "(5002 characters) is not a release"),
    ("6.12-", "is not a release"), ("6.12.1.2", "is not a release"),
    (6, "kernel: write the release as a string ('6.10'), not 6"),
    ("HUGE", "not <16610-bit number>"),
    ("4.13", "kernel: 4.13 is older than the eras hotmem models (4.14 .. 7.3)"),
])
def test_kernel_parse_refuses(bad, msg):
    bad = 10 ** 5000 if bad == "HUGE" else bad
    with pytest.raises(ConfigError) as ei:
        Kernel.parse(bad)
    assert msg in str(ei.value) and len(str(ei.value)) < 200


# ---------------------------------------------------------------- short / clip

def test_short_and_clip():
    assert short("x" * 10_000_000) == "'" + "x" * 40 + "'... (10000000 characters)"
    assert short(10 ** 5000) == "<16610-bit number>"
    deep = []
    for _ in range(5000):
        deep = [deep]
    assert short(deep) == "[[[...]]]"
    assert len(short({str(i): i for i in range(1000)})) < 100
    assert clip("a\nb\x00c") == "a\\nb\\x00c"
    assert clip("y" * 1000, 50) == "y" * 47 + "..."


# ---------------------------------------------------------------- API checks

def test_check_seed_count_node():
    assert check_seed(0) == 0 and check_seed(np.uint64(7)) == 7
    for bad, msg in ((-1, "seed: -1 is not between 0 and 18446744073709551615"),
                     (1 << 64, "is not between"), (True, "seed: True is not a whole number"),
                     ("1", "seed: '1' is not a whole number")):
        with pytest.raises(ConfigError, match=msg.replace("(", r"\(")):
            check_seed(bad)
    assert check_count(5) == 5
    with pytest.raises(ConfigError, match="pages: 0 is not between 1 and 1099511627776"):
        check_count(0)
    assert check_node(1, 2) == 1
    with pytest.raises(ConfigError, match="node: 2 is not between 0 and 1"):
        check_node(2, 2)


def test_check_remove_range():
    m = Machine("x86_64", boot_memory="1G", max_memory="8G")
    check_remove_range(m, 0x100000000, 0x100000000)          # ends at max_memory: fine
    for start, size in ((0x100000000, 1 << 62), (0x100000000, 16 << 50),
                        (0x1F8000000, 0x10000000)):
        with pytest.raises(HotplugError) as ei:
            check_remove_range(m, start, size)
        assert ei.value.errno == "EINVAL"
        assert ei.value.message == f"no memory was added at memory{start >> 27}"


def test_check_block_ids():
    m = Machine("x86_64", boot_memory="1G", max_memory="8G")
    check_block_ids(m, 0, 63)
    with pytest.raises(ConfigError, match=r"blocks: memory64 is beyond the machine's blocks "
                       r"\(memory0 .. memory63\)"):
        check_block_ids(m, 0, 64)
    with pytest.raises(ConfigError, match="memory1000000000 is beyond"):
        check_block_ids(m, 0, 10 ** 9)


# ---------------------------------------------------------------- scenarios

BAD = [
    ("", "<s>: top level: empty: a scenario needs a [machine] table or at least one [[step]]"),
    ("# only a comment\n", "top level: empty"),
    ('[[step]]\nop = ["add"]\n', "<s>: step 0 op: ['add'] is not one of add, online,"),
    ('[[step]]\nop = {x = 1}\n', "<s>: step 0 op: {'x': 1} is not one of"),
    ('[[step]]\nop = "alloc"\npages = 1\nseed = -1\n',
     "<s>: step 0 (alloc) seed: -1 is not between 0 and 18446744073709551615"),
    ('[[step]]\nop = "free"\npages = 0\n', "<s>: step 0 (free) pages: 0 is not between 1"),
    ('[[step]]\nop = "alloc"\npages = true\n', "<s>: step 0 (alloc) pages: True is not a whole"),
    ('[[step]]\nop = "alloc"\npages = 1\nkind = ["movable"]\n',
     "<s>: step 0 (alloc) kind: ['movable'] is not one of movable, unmovable"),
    ('[[step]]\nop = "online"\nblocks = "0-9223372036854775807"\n',
     "<s>: step 0 (online) blocks: '0-9223372036854775807' goes beyond any machine's blocks "
     "(0 .. 134217727)"),
    ('[[step]]\nop = "online"\nblocks = "0-1000000000"\n', "goes beyond any machine's blocks"),
    ('[[step]]\nop = "online"\nblocks = [4000000000]\n',
     "blocks: 4000000000 is not a block id (0 .. 134217727)"),
    ('[[step]]\nop = "alloc"\npages = 1\nnode = 3\n',
     "<s>: step 0 (alloc) node: 3 is not a node of the machine (nodes = 1)"),
    ('[machine]\nnodes = 2\n[[step]]\nop = "free"\nnode = 2\n',
     "<s>: step 0 (free) node: 2 is not a node of the machine (nodes = 2)"),
    ('[machine]\ncolour = 1\n', "<s>: [machine]: unknown key 'colour'; known: arch, auto_"),
    ('[machine]\nkernel_version = 1\n',
     "<s>: [machine]: unknown key 'kernel_version' (did you mean 'kernel'?)"),
    ('[[step]]\nop = "online"\nblocks = [true]\n', "blocks: [True] must be a list of whole"),
    ('[[step]]\nop = "online"\nblocks = [-1]\n', "blocks: -1 is not a block id"),
    ('[[step]]\nop = "online"\nblocks = []\n', "blocks: [] must be a list of whole numbers"),
    ('[[step]]\nop = "online"\nblocks = "\u0663-\u0664"\n', "is not a list of ids"),
    ('[[step]]\nop = "online"\nblocks = "offline"\ntype = "offline"\n',
     "<s>: step 0 (online) type: 'offline' is not one of online, online_kernel, online_movable"),
    ('[[step]]\nop = "add"\nsize = "1G"\nexpect = "EWHAT"\n',
     "<s>: step 0 (add) expect: 'EWHAT' is not \"ok\" or an errno name"),
    ('[[step]]\nop = "add"\nsize = "1G"\nnote = 3\n', "<s>: step 0 (add) note: 3 is not a string"),
    ('[[step]]\nop = "add"\nsize = "1G"\nnode = -1\n', "<s>: step 0 (add) node: -1 is not between"),
    ('[[step]]\nop = "add"\nsize = "1G"\ndriver = "usb"\n', "driver: 'usb' is not acpi or direct"),
    ('[machine]\nkernel = "6.12.x.y"\n', "<s>: [machine] kernel: '6.12.x.y' is not a release"),
    ('[machine]\nkernel = 6\n', "<s>: [machine] kernel: write the release as a string"),
    ('[machine]\nnodes = true\n', "<s>: [machine] nodes: True is not a whole number"),
    ('[machine]\nnodes = 65\n', "<s>: [machine] nodes: 65 is not between 1 and 64"),
    ('[machine]\nauto_movable_ratio = -5\n', "[machine] auto_movable_ratio: -5 is not between"),
    ('[machine]\narch = "' + "a" * 3_000_000 + '"\n',
     "<s>: [machine] arch: unknown arch '" + "a" * 40 + "'... (3000000 characters); known:"),
    ('[machine]\nboot_memory = "\u0661G"\n', "<s>: [machine] boot_memory: '\u0661G' is not a size"),
    ('[machine]\nmemmap_on_memory = 2\n',
     "<s>: [machine] memmap_on_memory: 2 is not n, y or force"),
    ('[machine]\ndesign = "rfc"\n',
     "<s>: [machine] design: 'rfc' is not one of none, mainline, rfc2018 (or module:attribute)"),
    ("a = " + "[" * 5000 + "]" * 5000 + "\n",
     "<s>: not valid TOML: arrays or tables nested too deeply"),
    ("a = 1" + "0" * 5000 + "\n", "<s>: not valid TOML: a number of thousands of digits"),
    ('[machine\n', "<s>: not valid TOML: Expected ']' at the end of a table declaration"),
]


@pytest.mark.parametrize("text,msg", BAD)
def test_scenario_refused(text, msg):
    with pytest.raises(ConfigError) as ei:
        loads_scenario(text, "<s>")
    err = str(ei.value)
    assert msg in err, err
    assert "\n" not in err and len(err) < 300


@pytest.mark.parametrize("text,msg", [
    ('[machine]\nmemmap_on_memory = "force"\nkernel = "6.1"\n',
     "<s>: [machine] memmap_on_memory: memmap_on_memory=force needs kernel 6.6 or later"),
    ('[machine]\ndesign = "rfc2018"\nkernel = "6.1"\n',
     "<s>: [machine] design: design rfc2018 is a patch on 4.20"),
    ('[machine]\nboot_memory = "1G"\nmax_memory = "512M"\n',
     "<s>: [machine] max_memory: boot memory ends beyond max_memory"),
    ('[machine]\nboot_memory = "1M"\n', "<s>: [machine] boot_memory: '1M' must be at least 64M"),
])
def test_machine_build_errors_name_the_key(text, msg):
    sc = loads_scenario(text, "<s>")
    with pytest.raises(ConfigError) as ei:
        sc.build_machine()
    assert msg in str(ei.value)


@pytest.mark.parametrize("step,msg", [
    ('op = "online"\nblocks = "0-100"\n',
     "<s>: step 0 (online) blocks: memory100 is beyond the machine's blocks "
     "(memory0 .. memory63)"),
    ('op = "offline"\nblocks = [1, 64]\n', "blocks: memory64 is beyond"),
    ('op = "alloc"\npages = 1\nzone = "Bogus"\n',
     "<s>: step 0 (alloc) zone: 'Bogus' is not a zone of x86_64"),
])
def test_step_errors_at_run_time(step, msg):
    sc = loads_scenario('[machine]\nboot_memory = "1G"\nmax_memory = "8G"\n[[step]]\n' + step,
                        "<s>")
    with pytest.raises(ConfigError) as ei:
        run_scenario(sc)
    assert msg in str(ei.value)


def test_remove_beyond_the_machine_is_einval_at_once():
    sc = loads_scenario('[machine]\nboot_memory = "1G"\n[[step]]\nop = "remove"\n'
                        'start = "0x100000000"\nsize = "16P"\n')
    _, res = run_scenario(sc)
    assert (res[0].errno, res[0].message, res[0].blocks) == (
        "EINVAL", "no memory was added at memory32", [])


@pytest.mark.parametrize("content,msg", [
    (b"\xff\xfe[\x00m\x00", "not UTF-8 text (byte 0: b'\\xff')"),
    (b"[machine]\narch = \"x86_64\"\x00\n", "not valid TOML: Expected newline or end of "
     "document after a statement (at line 2, column 16)"),
    (b"x" * ((4 << 20) + 1), "larger than 4 MiB; not a scenario"),
])
def test_load_scenario_refuses(tmp_path, content, msg):
    p = tmp_path / "s.toml"
    p.write_bytes(content)
    with pytest.raises(ConfigError) as ei:
        load_scenario(p)
    assert str(ei.value) == f"{p}: {msg}"


def test_load_scenario_not_a_regular_file(tmp_path):
    import os
    os.mkfifo(tmp_path / "fifo")       # no writer: opening must not wait
    with pytest.raises(ConfigError, match="fifo: not a regular file"):
        load_scenario(tmp_path / "fifo")
    with pytest.raises(ConfigError, match="cannot read: Is a directory"):
        load_scenario(tmp_path)
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        load_scenario(tmp_path / "missing.toml")
