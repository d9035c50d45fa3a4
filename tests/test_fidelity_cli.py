"""``hotmem fidelity`` says where the captures are when it cannot find them."""
from hotmem.fidelity import main


def test_no_captures_is_exit_2_with_where_they_live(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOTMEM_ORACLE_DIR", str(tmp_path))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "no captures in" in err and "tests/data/oracle" in err and "\n" == err[-1]
    assert err.count("\n") == 1
