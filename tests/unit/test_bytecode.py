import sys

from lifecycle.devtools import bytecode

TAG = sys.implementation.cache_tag


def _site(tmp_path):
    site = tmp_path / "site"
    for name, text in {
        "top.py": "X = 1\n",
        "pkg/a.py": "A = 1\n",
        "pkg/broken.py": "def f(:\n",
        "pkg/sub/c.py": "C = 1\n",
        "other/d.py": "D = 1\n",
    }.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    return site


def _compiled(site):
    return sorted(p.relative_to(site).as_posix() for p in site.rglob(f"*.{TAG}.pyc"))


def test_compiles_the_modules_directly_in_listed_folders_and_skips_what_does_not_compile(tmp_path):
    site = _site(tmp_path)
    assert bytecode.compile_folders([".", "pkg", "gone"], site) == 2
    assert _compiled(site) == [f"__pycache__/top.{TAG}.pyc", f"pkg/__pycache__/a.{TAG}.pyc"]


def test_record_lists_the_folders_holding_bytecode_and_folders_reads_them_back(tmp_path):
    site, lock = _site(tmp_path), tmp_path / "bytecode.lock"
    bytecode.compile_folders(["pkg/sub", "other"], site)
    (site / "pkg" / "__pycache__").mkdir()  # a cache of another Python's bytecode only
    (site / "pkg" / "__pycache__" / "a.cpython-39.pyc").write_bytes(b"")
    assert bytecode.record(site, lock) == 2
    assert lock.read_text().startswith("#")
    assert bytecode.folders(lock) == ["other", "pkg/sub"]


def test_the_lock_names_only_folders_of_the_installed_environment():
    """A lock upgrade that removes a listed folder fails here: make bytecode-lock records it anew."""
    site = bytecode.site_packages()
    names = bytecode.folders()
    assert len(names) > 1000
    assert [name for name in names if not (site / name).is_dir()] == []


def test_an_unknown_command_is_a_usage_error(capsys):
    assert bytecode.main(["compil"]) == 2
    assert "compile|record" in capsys.readouterr().err
