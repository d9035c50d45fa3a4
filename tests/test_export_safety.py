"""--export never clobbers or follows links (hotmem.safeio).

Every test records the whole tmp_path tree (types, contents, link targets)
before and after: no file outside the export folder may change, and without
--force nothing inside it either.
"""
import hashlib
import os
import re
from pathlib import Path

import pytest

from hotmem.cli import main
from hotmem.safeio import MANIFEST, DirWriter, SafeIOError, write_file

SCENARIO = """
[machine]
boot_memory = "512M"
memmap_on_memory = "y"
[[step]]
op = "add"
size = "256M"
[[step]]
op = "online"
blocks = "offline"
type = "online_movable"
"""
VIEWS = {"proc/buddyinfo", "proc/zoneinfo", "proc/pagetypeinfo", "proc/kpageflags",
         "sys/devices/system/memory/block_size_bytes",
         "sys/devices/system/memory/memory32/state"}


def tree(root: Path) -> dict[str, tuple]:
    """path -> ("dir",) / ("file", sha256) / ("link", target), never following links."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def outside(t: dict, name: str) -> dict:
    return {k: v for k, v in t.items() if k != name and not k.startswith(name + "/")
            and not k.startswith(f".{name}.hotmem-")}


@pytest.fixture
def ws(tmp_path):
    """A workspace: the scenario, a victim file and a victim folder."""
    (tmp_path / "s.toml").write_text(SCENARIO)
    (tmp_path / "victim.txt").write_text("precious\n")
    (tmp_path / "victimdir").mkdir()
    (tmp_path / "victimdir" / "keep").write_text("keep me\n")
    return tmp_path


def run(ws, *extra):
    return main(["run", str(ws / "s.toml"), "--export", str(ws / "out"), *extra])


def err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 300 and "Traceback" not in err, err
    return err


def test_fresh_export_writes_only_the_folder(ws, capsys):
    before = tree(ws)
    assert run(ws) == 0
    after = tree(ws)
    assert outside(after, "out") == before
    rel = {k[4:] for k, v in after.items() if k.startswith("out/") and v[0] in ("file", "link")}
    assert VIEWS <= rel
    listed = set((ws / "out" / MANIFEST).read_text().splitlines())
    assert listed == rel          # the manifest lists exactly what was written (files, links)
    # no temporary folder left beside it
    assert not [p for p in os.listdir(ws) if ".hotmem-" in p]


def test_existing_nonempty_folder_is_refused(ws, capsys):
    (ws / "out" / "sys/devices/system/memory").mkdir(parents=True)
    (ws / "out" / "sys/devices/system/memory/README").write_text("not hotmem's\n")
    before = tree(ws)
    assert run(ws) == 2
    assert "out: exists and is not empty (--force replaces it)" in err_line(capsys)
    assert tree(ws) == before


def test_force_replaces_and_keeps_foreign_files_aside(ws, capsys):
    (ws / "out" / "sys/devices/system/memory").mkdir(parents=True)
    (ws / "out" / "sys/devices/system/memory/README").write_text("not hotmem's\n")
    before = tree(ws)
    assert run(ws, "--force") == 0
    after = tree(ws)
    aside = [p for p in os.listdir(ws) if p.startswith(".out.hotmem-old-")]
    assert len(aside) == 1
    # the README was not hotmem's: it is kept, whole, in the renamed-aside folder
    assert after[f"{aside[0]}/sys/devices/system/memory/README"] == \
        before["out/sys/devices/system/memory/README"]
    assert "kept" in capsys.readouterr().err
    assert {k for k in outside(after, "out") if not k.startswith(aside[0])} == set(before) - {
        k for k in before if k.startswith("out")}


def test_force_over_an_earlier_export_deletes_it_whole(ws, capsys):
    assert run(ws) == 0
    (ws / "s.toml").write_text(SCENARIO.replace('size = "256M"', 'size = "128M"'))
    before = outside(tree(ws), "out")
    assert run(ws, "--force") == 0
    after = tree(ws)
    assert outside(after, "out") == before      # nothing kept aside: all of it was hotmem's
    assert "out/sys/devices/system/memory/memory33" not in after   # the old block is gone
    assert "out/sys/devices/system/memory/memory32/state" in after


def test_empty_folder_is_used(ws):
    (ws / "out").mkdir()
    assert run(ws) == 0
    assert (ws / "out/proc/kpageflags").is_file()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_file_in_the_way(ws, capsys, force):
    (ws / "out").write_text("a file\n")
    before = tree(ws)
    assert run(ws, *force) == 2
    assert "out: a file is in the way (it must be a folder)" in err_line(capsys)
    assert tree(ws) == before


def test_file_in_the_way_of_a_parent(ws, capsys):
    before = tree(ws)
    assert main(["run", str(ws / "s.toml"), "--export", str(ws / "victim.txt" / "out")]) == 2
    assert "victim.txt: a file is in the way" in err_line(capsys)
    assert tree(ws) == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_symlinked_target(ws, capsys, force):
    (ws / "out").symlink_to(ws / "victimdir")
    before = tree(ws)
    assert run(ws, *force) == 2
    assert "out: is a symlink; not followed" in err_line(capsys)
    assert tree(ws) == before


def plant(ws, each: bool) -> None:
    """Symlinks inside the target pointing at the victims."""
    base = ws / "out" / ("00-add" if each else "")
    (ws / "out").mkdir()
    if each:
        (ws / "out" / "00-add").symlink_to(ws / "victimdir")
        base = ws / "out" / "01-online"
    (base / "proc").mkdir(parents=True)
    (base / "proc" / "kpageflags").symlink_to(ws / "victim.txt")
    (base / "proc" / "zoneinfo").symlink_to(ws / "victimdir" / "keep")
    (base / "sys").symlink_to(ws / "victimdir")


@pytest.mark.parametrize("each", [False, True])
def test_planted_symlinks_without_force(ws, capsys, each):
    plant(ws, each)
    before = tree(ws)
    assert run(ws, *(["--export-each"] if each else [])) == 2
    err_line(capsys)
    assert tree(ws) == before


@pytest.mark.parametrize("each", [False, True])
def test_planted_symlinks_with_force(ws, capsys, each):
    plant(ws, each)
    before = tree(ws)
    victims = {k: v for k, v in before.items() if k.startswith("victim")}
    assert run(ws, "--force", *(["--export-each"] if each else [])) == 0
    after = tree(ws)
    assert {k: v for k, v in after.items() if k.startswith("victim")} == victims
    assert (ws / "victim.txt").read_text() == "precious\n"
    assert (ws / "victimdir" / "keep").read_text() == "keep me\n"
    assert sorted(os.listdir(ws / "victimdir")) == ["keep"]
    # the new export is real files and folders, and the sysfs links hotmem
    # writes (memoryN/nodeM, nodeN/memoryM, memoryN/firmware_node): none of
    # the planted links, none pointing outside the export
    new = {k: v for k, v in after.items() if k.startswith("out/")}
    links = {k: v for k, v in new.items() if v[0] == "link"}
    assert new and links
    assert all(re.search(r"/sys/devices/system/(memory/memory\d+/(node\d+|firmware_node)|"
                         r"node/node\d+/memory\d+)$", k) for k in links), sorted(links)
    assert not any("victim" in str(v) for v in links.values())
    # the planted links were not hotmem's: they are kept aside, unfollowed
    aside = [p for p in os.listdir(ws) if p.startswith(".out.hotmem-old-")]
    assert len(aside) == 1
    assert {v for k, v in after.items() if k.startswith(aside[0]) and v[0] == "link"} == {
        v for k, v in before.items() if v[0] == "link"}


def test_export_each_folders(ws):
    assert run(ws, "--export-each") == 0
    assert sorted(os.listdir(ws / "out")) == [MANIFEST, "00-add", "01-online"]
    assert (ws / "out/00-add/sys/devices/system/memory/memory32/state").read_text() == "offline\n"
    assert (ws / "out/01-online/sys/devices/system/memory/memory32/state").read_text() == \
        "online\n"


def test_bad_step_leaves_nothing(ws, capsys):
    """A ConfigError while the steps run: no temporary folder, no target."""
    (ws / "s.toml").write_text(SCENARIO + '[[step]]\nop = "alloc"\npages = 1\nzone = "Nope"\n')
    before = tree(ws)
    assert run(ws, "--export-each") == 2
    assert "step 2 (alloc) zone: 'Nope' is not a zone of x86_64" in err_line(capsys)
    assert tree(ws) == before


def test_write_file(tmp_path):
    p = tmp_path / "snap.json"
    write_file(p, "one\n")
    assert p.read_text() == "one\n"
    with pytest.raises(SafeIOError, match="exists"):
        write_file(p, "two\n")
    assert p.read_text() == "one\n"
    write_file(p, b"two\n", force=True)
    assert p.read_text() == "two\n"
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    for force in (False, True):
        with pytest.raises(SafeIOError, match="is a symlink; not followed"):
            write_file(link, "x", force=force)
    assert victim.read_text() == "precious\n" and link.is_symlink()
    with pytest.raises(SafeIOError, match="not a regular file"):
        write_file(tmp_path, "x", force=True)
    assert sorted(os.listdir(tmp_path)) == ["link.json", "snap.json", "victim"]


def test_write_file_callable_and_failure(tmp_path):
    p = tmp_path / "out.bin"
    write_file(p, lambda fh: fh.write(b"\x00" * 10))
    assert p.read_bytes() == b"\x00" * 10

    def boom(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(SafeIOError, match="No space left on device"):
        write_file(tmp_path / "other.bin", boom)
    assert sorted(os.listdir(tmp_path)) == ["out.bin"]     # no temporary file left


def test_dirwriter_refuses_escapes(tmp_path):
    w = DirWriter(tmp_path / "d")
    for rel in ("../x", "a/../../x", "", "/"):
        with pytest.raises(SafeIOError, match="not a relative path"):
            w.open(rel)
    w.write_text("a/b", "1\n")
    with pytest.raises(SafeIOError, match="cannot write: File exists"):
        w.write_text("a/b", "2\n")
    w.commit()
    assert (tmp_path / "d/a/b").read_text() == "1\n"
    assert (tmp_path / "d" / MANIFEST).read_text() == f"a/b\n{MANIFEST}\n"


def test_symlinked_parent_is_the_users_choice(ws):
    """Folders above the target may be symlinks (a symlinked home): followed."""
    (ws / "real").mkdir()
    (ws / "home").symlink_to(ws / "real")
    assert main(["run", str(ws / "s.toml"), "--export", str(ws / "home" / "out")]) == 0
    assert (ws / "real" / "out" / "proc" / "kpageflags").is_file()


def test_refused_run_leaves_no_parent_folders(ws, capsys):
    """Folders made above DIR are removed again when nothing is exported."""
    (ws / "s.toml").write_text('[[step]]\nop = "alloc"\npages = 1\nzone = "Nope"\n')
    before = tree(ws)
    assert main(["run", str(ws / "s.toml"), "--export", str(ws / "a" / "b" / "out")]) == 2
    err_line(capsys)
    assert tree(ws) == before
    (ws / "s.toml").write_text(SCENARIO)
    assert main(["run", str(ws / "s.toml"), "--export", str(ws / "a" / "b" / "out")]) == 0
    assert (ws / "a/b/out/proc/buddyinfo").is_file()
