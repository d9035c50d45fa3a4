"""Hot-add drivers with the kernel's numbers (docs/drivers.md, worked examples
and test cases T1-T24): virtio-mem, dax/kmem, pseries DLPAR, s390 standby,
Hyper-V and Xen balloons.  The virtio-mem and dax/kmem paths are also checked
against real kernels in tests/test_oracle.py."""
import numpy as np
import pytest

from hotmem import invariants
from hotmem.constants import MEM_OFFLINE, MEM_ONLINE, P_OFFLINE
from hotmem.errors import ConfigError, HotplugError
from hotmem.machine import Machine
from hotmem.memory_hotplug import offline_and_remove_memory
from hotmem.scenario import loads_scenario, run_scenario
from hotmem.views.kpageflags import kpageflags

GiB = 1 << 30
VM0 = {"name": "vm0", "driver": "virtio-mem", "start": "0x140000000", "size": "4G",
       "block_size": "2M"}


def flags(m, s, e):
    u, c = np.unique(kpageflags(m, s, e), return_counts=True)
    return {int(a): int(b) for a, b in zip(u, c, strict=True)}


def movable(m):
    z = m.zone_by_name("Movable")
    nf = m.pages.nr_free[z.zid].sum(axis=0)
    return z.spanned_pages, z.present_pages, z.managed_pages, int(nf[10]), int(nf[9])


# ---------------------------------------------------------------- virtio-mem

@pytest.fixture
def vmem():
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online_movable")
    return m


def test_virtio_mem_sizes_and_group(vmem):
    blocks = vmem.attach({**VM0, "requested_size": "1G"})
    dev = vmem.device("vm0")
    assert blocks == list(range(40, 48))
    assert (dev.sbm, dev.sb_size, dev.sbs_per_mb, dev.offline_threshold) == (True, 2 << 20, 64,
                                                                           GiB)
    g = dev.group
    assert g.is_dynamic and g.unit_pages == 32768 and not g.memmap_on_memory
    assert all(vmem.nr_vmemmap_pages(b) == 0 and len(vmem.memmap_from_buddy[b]) == 512
               for b in blocks)    # never memmap on memory: 2 MiB of boot memory each
    assert dev.iomem(vmem) == [(0x140000000, 0x23fffffff, "virtio0", 0),
                               (0x140000000, 0x17fffffff, "System RAM (virtio_mem)", 1)]


def test_virtio_mem_resize_sequence_v1(vmem):
    """docs/drivers.md §2.7: T1 .. T6."""
    vmem.attach({**VM0, "requested_size": "1G"})
    assert movable(vmem) == (262144, 262144, 262144, 256, 0)                       # T1
    assert vmem.resize("vm0", "2G") == list(range(48, 56))
    assert movable(vmem) == (524288, 524288, 524288, 512, 0)                       # T2
    assert vmem.resize("vm0", "512M") == list(range(44, 56))                       # T3
    assert movable(vmem) == (131072, 131072, 131072, 128, 0)
    assert vmem.device("vm0").iomem(vmem)[1][:2] == (0x140000000, 0x15fffffff)
    assert vmem.resize("vm0", "600M") == [44]                                       # T4
    assert movable(vmem) == (163840, 163840, 153600, 150, 0)
    assert flags(vmem, 0x160000, 0x168000) == {0x400: 22528, 0x800010: 10240}
    assert kpageflags(vmem, 0x165800, 0x165801)[0] == 0x800010
    assert vmem.device("vm0").state[44] == "movable_partial"
    vmem.resize("vm0", "520M")                                                      # T5
    assert movable(vmem)[2:4] == (133120, 130)
    assert flags(vmem, 0x160000, 0x168000) == {0x400: 2048, 0x800000: 20480, 0x800010: 10240}
    assert kpageflags(vmem, 0x160800, 0x160801)[0] == 0x800000
    assert vmem.resize("vm0", "512M") == [44]                                       # T6
    assert movable(vmem) == (131072, 131072, 131072, 128, 0)
    invariants.check(vmem)


def test_virtio_mem_enospc_and_requeue_v2():
    """§2.8 / T7: with auto-online off, the plug stops at the offline threshold;
    onlining gives room and the work goes on."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G")
    m.attach({**VM0, "requested_size": "0"})
    with pytest.raises(HotplugError) as e:
        m.resize("vm0", "2G")
    assert e.value.errno == "ENOSPC"
    dev = m.device("vm0")
    assert dev.plugged == GiB and list(m.blocks_in_state(MEM_OFFLINE)) == list(range(40, 48))
    for b in (40, 41, 42):
        m.online(b, "online_movable")
    assert dev.plugged == GiB and dev.offline_size == 640 << 20
    m.online(43, "online_movable")          # offline memory down to 512 MiB: requeued
    assert dev.plugged == 1536 << 20 and dev.last_rc == "ENOSPC"
    assert list(m.blocks_in_state(MEM_OFFLINE)) == [44, 45, 46, 47, 48, 49, 50, 51]


def test_virtio_mem_big_block_mode():
    """T8: a device block as large as a memory block: BBM, one group unit per block."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online_movable")
    m.attach({**VM0, "block_size": "128M", "requested_size": "512M"})
    dev = m.device("vm0")
    assert (dev.sbm, dev.unit, dev.group.unit_pages) == (False, 128 << 20, 32768)
    assert list(m.blocks_in_state(MEM_ONLINE))[-4:] == [40, 41, 42, 43]
    m.resize("vm0", "256M")
    assert [b for b in range(40, 44) if m.blk_state[b]] == [40, 41]   # highest first


def test_virtio_mem_force_bbm_1g_unit_and_rollback():
    """T9: force_bbm with 1 GiB big blocks; a pinned page in block 41 makes the
    unplug fail; block 40's sections are given back and all stays online."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online_movable")
    m.attach({**VM0, "force_bbm": True, "bbm_block_size": "1G", "requested_size": "1G"})
    dev = m.device("vm0")
    assert (dev.unit, dev.group.unit_pages, dev.offline_threshold) == (GiB, 262144, 2 * GiB)
    assert list(m.blocks_in_state(MEM_ONLINE))[-8:] == list(range(40, 48))
    pinned = 41 * 32768 + 100
    m.pages.take_range(pinned, pinned + 1)
    m.pages.set(4, pinned, pinned + 1)             # P_UNMOVABLE: a long-term pin
    with pytest.raises(HotplugError) as e:
        m.resize("vm0", "0")
    assert e.value.errno == "EBUSY"
    assert all(m.blk_state[b] == MEM_ONLINE for b in range(40, 48))
    assert dev.state[5] == "added" and dev.plugged == GiB       # big block 5: 5-6 GiB
    assert m.zone_by_name("Movable").managed_pages == 262144
    assert m.pages.count(P_OFFLINE, 40 * 32768, 48 * 32768) == 0


def test_virtio_mem_user_offline_of_a_partial_block(vmem):
    """T10: a partially plugged block offlines (its PageOffline pages are
    skipped) and comes back online with them still PageOffline."""
    vmem.attach({**VM0, "requested_size": "600M"})
    b = 44
    assert vmem.device("vm0").state[b] == "movable_partial"
    z = vmem.zone_by_name("Movable")
    managed = z.managed_pages
    vmem.offline(b)
    assert z.managed_pages == managed - 22528 and vmem.device("vm0").state[b] == "offline_partial"
    vmem.online(b, "online_movable")
    assert z.managed_pages == managed
    assert vmem.pages.count(P_OFFLINE, 0x160000, 0x168000) == 10240


def test_offline_and_remove_memory_rolls_back():
    """T11: blocks 40-43 movable, 44-47 kernel; an unmovable page in 45 fails
    the offline; what was offlined comes back in its kind of zone."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G")
    m.add(0x140000000, "1G")
    for b in range(40, 44):
        m.online(b, "online_movable")
    for b in range(44, 48):
        m.online(b, "online_kernel")
    pinned = 45 * 32768 + 7                        # a kernel page in memory45
    m.pages.take_range(pinned, pinned + 1)
    m.pages.set(4, pinned, pinned + 1)
    with pytest.raises(HotplugError) as e:
        offline_and_remove_memory(m, 0x140000000, GiB)
    assert e.value.errno == "EBUSY" and e.value.block == 45
    assert all(m.blk_state[b] == MEM_ONLINE for b in range(40, 48))
    assert {m.zones[int(m.blk_zone[b])].name for b in range(40, 44)} == {"Movable"}
    assert {m.zones[int(m.blk_zone[b])].name for b in range(44, 48)} == {"Normal"}


def test_auto_movable_with_a_dynamic_group():
    """T12: one virtio-mem device under auto-movable (ratio 301): 96 blocks
    movable, then kernel and movable blocks interleave by the formula
    32768*(m+1) <= 301*(K + 32768*k)//100."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", online_policy="auto-movable",
                auto_online_blocks="online")
    m.attach({**VM0, "size": "16G", "requested_size": "16G"})
    zones = [m.zones[int(m.blk_zone[b])].name for b in range(40, 168)]
    assert zones[:96] == ["Movable"] * 96
    assert zones[96:] == (["Normal"] + ["Movable"] * 3) * 8
    g = m.device("vm0").group
    assert (g.present_movable_pages, g.present_kernel_pages) == (120 * 32768, 8 * 32768)


def test_virtio_mem_in_a_scenario_with_report():
    sc = loads_scenario('''
[machine]
arch = "x86_64"
kernel = "6.12"
boot_memory = "4G"
auto_online_blocks = "online_movable"
[[device]]
name = "vm0"
driver = "virtio-mem"
start = "0x140000000"
size = "4G"
block_size = "2M"
requested_size = "1G"
[[step]]
op = "attach"
device = "vm0"
[[step]]
op = "resize"
device = "vm0"
size = "600M"
[[step]]
op = "detach"
device = "vm0"
''')
    m, res = run_scenario(sc)
    assert [r.result for r in res] == ["ok", "ok", "ok"]
    assert res[1].blocks == list(range(45, 48)) and not m.devices


def test_device_table_errors():
    bad = [({"name": "x", "driver": "nope", "size": "1G"}, "driver 'nope' is not one of"),
           ({"name": "x", "driver": "virtio-mem"}, "size is required"),
           ({"name": "x", "driver": "virtio-mem", "size": "1G", "colour": 1},
            "takes no key 'colour'"),
           ({"name": "x", "driver": "dax-kmem", "size": "1G", "kind": "ssd"}, "kind 'ssd'")]
    for spec, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            Machine("x86_64", boot_memory="2G").attach(spec)
    with pytest.raises(ConfigError, match="device 'vm9' is not a \\[\\[device\\]\\]"):
        loads_scenario('[[step]]\nop = "attach"\ndevice = "vm9"\n')


# ---------------------------------------------------------------- dax/kmem

def dax_machine(mode="y"):
    return Machine("x86_64", kernel="6.12", boot_memory="4G", nr_nodes=2,
                   memmap_on_memory=mode, auto_online_blocks="online")


@pytest.mark.parametrize("mom,managed,o9,o10", [(True, 258048, 8, 248), (False, 262144, 0, 256)])
def test_dax_kmem_node1(mom, managed, o9, o10):
    """T13 / T14 (§3.5): 1 GiB on node 1, memmap_on_memory 1 and 0."""
    m = dax_machine()
    blocks = m.attach({"name": "dax0.0", "driver": "dax-kmem", "start": "0x240000000",
                       "size": "1G", "node": 1, "memmap_on_memory": mom})
    assert blocks == list(range(72, 80))
    z = m.zone(1, 2)
    nf = m.pages.nr_free[z.zid].sum(axis=0)
    assert (z.spanned_pages, z.present_pages, z.managed_pages) == (262144, 262144, managed)
    assert (int(nf[9]), int(nf[10])) == (o9, o10)
    assert kpageflags(m, 72 * 32768, 72 * 32768 + 1)[0] == (0x2000000000 if mom else 0x400)
    assert m.device("dax0.0").iomem(m) == [(0x240000000, 0x27fffffff, "dax0.0", 0),
                                          (0x240000000, 0x27fffffff, "System RAM (kmem)", 1)]


def test_dax_kmem_attribute_refused_and_cxl_default_falls_back():
    """T15: writing 1 with the global parameter off is EOPNOTSUPP; a CXL
    device's default of 1 falls back silently."""
    m = dax_machine("n")
    with pytest.raises(HotplugError) as e:
        m.attach({"name": "dax0.0", "driver": "dax-kmem", "start": "0x240000000",
                  "size": "1G", "memmap_on_memory": True})
    assert e.value.errno == "EOPNOTSUPP" and not m.devices
    m.attach({"name": "dax1.0", "driver": "dax-kmem", "start": "0x240000000", "size": "1G",
              "kind": "cxl"})
    assert m.nr_vmemmap_pages(72) == 0 and len(m.memmap_from_buddy[72]) == 512


def test_dax_kmem_unbind_keeps_online_memory():
    """T16: unbind with blocks online is remove_memory's EBUSY, only logged."""
    m = dax_machine()
    m.attach({"name": "dax0.0", "driver": "dax-kmem", "start": "0x240000000", "size": "1G"})
    dev = m.device("dax0.0")
    assert m.detach("dax0.0") == []
    assert all(m.blk_state[b] == MEM_ONLINE for b in range(72, 80))
    assert "cannot be hotremoved until the next reboot" in dev.notes[-1]
    m.offline_blocks(range(72, 80))
    assert dev.detach(m) == list(range(72, 80)) and not m.devices


@pytest.mark.parametrize("kernel,logged", [("6.12", False), ("7.3", True)])
def test_dax_kmem_truncation(kernel, logged):
    """T17: a range that is not block aligned loses its edges; 7.x says so."""
    m = Machine("x86_64", kernel=kernel, boot_memory="2G")
    blocks = m.attach({"name": "dax0.0", "driver": "dax-kmem", "start": "0x100200000",
                       "size": "510M"})
    assert blocks == [33, 34, 35]
    notes = m.device("dax0.0").notes
    assert (notes == ["DAX region truncated by 126.0 MiB due to alignment"]) == logged


# ---------------------------------------------------------------- DLPAR

def test_dlpar_4k_onlines_into_normal():
    """T18: one LMB on ppc64 radix 4K, 6.12: memmap on memory, onlined by the
    driver into Normal; online_movable afterwards is EINVAL."""
    m = Machine("ppc64-radix-4k", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    z = m.zone_by_name("Normal")
    present, managed = z.present_pages, z.managed_pages
    [b] = m.attach({"name": "dimm0", "driver": "dlpar", "size": "256M"})
    assert m.blk_state[b] == MEM_ONLINE and m.zones[int(m.blk_zone[b])] is z
    assert (z.present_pages - present, z.managed_pages - managed) == (65536, 64512)
    s, e = m.block_range(b)
    heads, orders = m.pages.free_blocks(s, e)
    assert np.bincount(orders, minlength=13)[10:13].tolist() == [1, 1, 15]
    with pytest.raises(HotplugError) as err:
        m.online(b, "online_movable")
    assert err.value.errno == "EINVAL"


def test_dlpar_6_1_has_no_memmap_on_memory():
    """T19: 6.1 passes MHP_NONE: 16 order-12 blocks, managed +65536."""
    m = Machine("ppc64-radix-4k", kernel="6.1", boot_memory="2G", memmap_on_memory="y")
    [b] = m.attach({"name": "dimm0", "driver": "dlpar", "size": "256M"})
    s, e = m.block_range(b)
    _, orders = m.pages.free_blocks(s, e)
    assert orders.tolist() == [12] * 16 and m.nr_vmemmap_pages(b) == 0


def test_dlpar_remove_is_all_or_nothing():
    m = Machine("ppc64-radix-4k", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    blocks = m.attach({"name": "dimm0", "driver": "dlpar", "size": "512M"})
    s, _ = m.block_range(blocks[1])
    m.pages.take_range(s + 2000, s + 2001)
    m.pages.set(4, s + 2000, s + 2001)
    with pytest.raises(HotplugError) as e:
        m.detach("dimm0")
    assert e.value.errno == "EBUSY"
    assert all(m.blk_state[b] == MEM_ONLINE for b in blocks) and "dimm0" in m.devices


# ---------------------------------------------------------------- s390 standby

def test_sclp_standby_6_12_added_offline_at_boot():
    """T22: standby blocks exist offline; online gives 63 order-10 blocks."""
    m = Machine("s390x", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    blocks = m.attach({"name": "standby", "driver": "sclp-standby", "size": "2G"})
    assert blocks == list(range(8, 16)) and all(m.blk_state[b] == MEM_OFFLINE for b in blocks)
    m.online(8, "online_movable")
    z = m.zone_by_name("Movable")
    assert (z.present_pages, z.managed_pages) == (65536, 64512)
    assert m.pages.nr_free[z.zid].sum(axis=0)[10] == 63
    with pytest.raises(HotplugError) as e:
        m.detach("standby")
    assert e.value.errno == "EINVAL"


def test_sclp_standby_6_19_per_block_config():
    """T21: from 6.19, deconfiguring an online block is EBUSY; writing
    memmap_on_memory=1 where it is not supported is EOPNOTSUPP."""
    m = Machine("s390x", kernel="6.19", boot_memory="2G", memmap_on_memory="y")
    m.attach({"name": "standby", "driver": "sclp-standby", "size": "256M"})
    m.online(8)
    with pytest.raises(HotplugError) as e:
        m.detach("standby")
    assert e.value.errno == "EBUSY"
    m.offline(8)
    assert m.detach("standby") == [8]
    n = Machine("s390x", kernel="6.19", boot_memory="2G", memmap_on_memory="n")
    with pytest.raises(HotplugError) as e:
        n.attach({"name": "standby", "driver": "sclp-standby", "size": "256M",
                  "memmap_on_memory": True})
    assert e.value.errno == "EOPNOTSUPP"


# ---------------------------------------------------------------- balloons

def test_hv_balloon_holes_block_offline():
    """T23: 200 MiB hot-added, the host backs all but the tail of block 2."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online")
    z = m.zone_by_name("Normal")
    present, managed = z.present_pages, z.managed_pages
    blocks = m.attach({"name": "hv", "driver": "hv-balloon", "start": "0x140000000",
                       "size": "200M", "backed": "200M"})
    assert blocks == [40, 41]
    assert m.pages.count(P_OFFLINE, 41 * 32768, 42 * 32768) == 32768 - 18432
    assert (z.present_pages - present, z.managed_pages - managed) == (65536, 32768 + 18432)
    assert kpageflags(m, 41 * 32768 + 18432, 41 * 32768 + 18433)[0] == 0x800000
    with pytest.raises(HotplugError) as e:
        m.offline(41)
    assert e.value.errno == "EBUSY"
    m.offline(40)


def test_xen_balloon_pages_go_to_the_balloon():
    """T24: every page of the added memory starts in the balloon; 1000 pages
    populated are managed, the block cannot go offline."""
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", auto_online_blocks="online")
    z = m.zone_by_name("Normal")
    present, managed = z.present_pages, z.managed_pages
    m.attach({"name": "xen", "driver": "xen-balloon", "start": "0x140000000",
              "size": "128M", "backed": "0"})
    m.resize("xen", 1000 * 4096)
    assert (z.present_pages - present, z.managed_pages - managed) == (32768, 1000)
    with pytest.raises(HotplugError) as e:
        m.offline(40)
    assert e.value.errno == "EBUSY"


@pytest.mark.parametrize("kernel,mom,result", [("6.12", True, "ok"), ("7.3", True, "EPERM"),
                                               ("7.3", False, "ok")])
def test_arm64_rejects_offline_splitting_a_vmemmap_leaf(kernel, mom, result):
    """arm64 7.3.4 (tests/data/oracle/arm64-7.3-mom1-kmem): with the memmap on
    the block, the offlined range starts 512 pages in, inside a 2 MiB leaf of
    the vmemmap, and the arch notifier refuses it; 6.12.117 has no such check."""
    m = Machine("arm64-4k", kernel=kernel, boot_memory="2G", memmap_on_memory="y")
    m.attach({"name": "dax0.0", "driver": "dax-kmem", "start": "0xc8000000", "size": "128M",
              "memmap_on_memory": mom})
    m.online(25, "online_movable")
    before = m.snapshot()
    if result == "ok":
        m.offline(25)
        return
    with pytest.raises(HotplugError) as e:
        m.offline(25)
    assert e.value.errno == "EPERM" and "[c8200000 d0000000] splits a leaf" in e.value.message
    from conftest import snapshots_equal
    assert snapshots_equal(before, m.snapshot()) == []


def test_dax_memmap_on_memory_attribute_writes():
    """drivers/dax/bus.c memmap_on_memory_store(): a write before binding sets
    what the bind uses; a change while bound is EBUSY; 16K pages refuse 1."""
    sc = loads_scenario('''
[machine]
arch = "arm64-4k"
kernel = "6.12"
boot_memory = "2G"
memmap_on_memory = "y"
on_error = "continue"
[[device]]
name = "dax0.0"
driver = "dax-kmem"
start = "0xc0200000"
size = "0x3fe00000"
[[step]]
op = "set"
device = "dax0.0"
key = "memmap_on_memory"
value = true
[[step]]
op = "attach"
device = "dax0.0"
[[step]]
op = "set"
device = "dax0.0"
key = "memmap_on_memory"
value = false
''')
    m, res = run_scenario(sc)
    assert [r.result for r in res] == ["ok", "ok", "EBUSY"]
    assert res[1].blocks == list(range(25, 32)) and m.nr_vmemmap_pages(25) == 512
    assert sc.devices["dax0.0"].get("memmap_on_memory") is None    # the scenario is unchanged
    k16 = Machine("arm64-16k", kernel="6.12", boot_memory="2G", memmap_on_memory="y")
    with pytest.raises(HotplugError) as e:
        k16.attach({"name": "d", "driver": "dax-kmem", "start": "0xc2000000", "size": "992M",
                    "memmap_on_memory": True})
    assert e.value.errno == "EOPNOTSUPP"


def test_iomem_shows_the_drivers_resources(tmp_path):
    """/proc/iomem of the export: virtio-mem's parent resource and its merged
    System RAM (virtio_mem) child, dax's daxX.Y with System RAM (kmem)."""
    from hotmem.views.iomem import iomem
    m = Machine("x86_64", kernel="6.12", boot_memory="4G", nr_nodes=2,
                auto_online_blocks="online_movable")
    m.attach({**VM0, "requested_size": "1G"})
    m.attach({"name": "dax0.0", "driver": "dax-kmem", "start": "0x240000000", "size": "1G",
              "node": 1})
    lines = iomem(m).splitlines()
    assert lines[-4:] == ["140000000-23fffffff : virtio0",
                          "  140000000-17fffffff : System RAM (virtio_mem)",
                          "240000000-27fffffff : dax0.0",
                          "  240000000-27fffffff : System RAM (kmem)"]


@pytest.mark.parametrize("fast_paths", [True, False])
def test_arm64_leaf_check_on_every_offline_path(fast_paths):
    """The API campaign found it: the one-pass offline of a single block must
    refuse what the block-by-block path refuses (arm64 7.3, memmap on memory)."""
    m = Machine("arm64-4k", kernel="7.3", boot_memory="2G", memmap_on_memory="y")
    m.fast_paths = fast_paths
    blocks = m.add(None, "256M")
    m.online_blocks(blocks, "online_movable")
    before = m.snapshot()
    with pytest.raises(HotplugError) as e:
        m.offline(blocks[0])
    assert e.value.errno == "EPERM"
    [(b, err)] = m.offline_blocks(blocks[1:])
    assert err is not None and err.errno == "EPERM"
    from conftest import snapshots_equal
    assert snapshots_equal(before, m.snapshot()) == []
