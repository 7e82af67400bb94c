"""The bento's content: the modules the live service imports, the locked packages it needs, no Airflow."""

import os

import pytest

from lifecycle import bento_content, packaging


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    dest = tmp_path_factory.mktemp("bento-ctx")
    return dest, bento_content.build_context(dest)


def test_the_context_holds_the_serving_modules_only(context):
    dest, _ = context
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert {"lifecycle/serving.py", "lifecycle/live.py", "lifecycle/feature_store.py", "lifecycle/modeling.py"} <= files
    assert "lifecycle/lake_offline_store.py" in files  # named by the rendered feature_store.yaml, imported by Feast
    assert not any(f.startswith(("lifecycle/platform/", "lifecycle/devtools/", "dags/")) for f in files), files
    # the stage modules the DAGs run (and the lake, which imports Airflow) stay out
    assert not files & {f"lifecycle/{m}.py" for m in ("training", "packaging", "lake", "demo", "sandbox", "env")}


def test_extra_packages_are_copied_whole_and_their_imports_followed(tmp_path):
    """A use case's top-level package, wherever it lives, ships whole; what it imports of
    ``lifecycle`` ships too, though the service alone would not import it."""
    pkg = tmp_path / "elsewhere" / "demo_case"
    (pkg / "feature_repo").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from lifecycle import aliases, lake_offline_store  # noqa: F401\n")
    (pkg / "feature_repo" / "definitions.py").write_text("# Feast objects\n")
    dest = tmp_path / "ctx"
    found = bento_content.build_context(dest, [pkg])
    assert "lifecycle.aliases" in found["lifecycle"]
    assert (dest / "demo_case/__init__.py").is_file() and (dest / "demo_case/feature_repo/definitions.py").is_file()
    assert (dest / "lifecycle/aliases.py").is_file() and (dest / "lifecycle/contract.py").is_file()
    assert not (dest / "lifecycle" / "usecases").exists()


def test_the_requirements_are_the_serving_closure_of_the_lock_without_airflow(context):
    _, found = context
    lock = packaging.locked_packages()
    lines = packaging.locked_packages(bento_content.serving_distributions(found))
    assert set(lines) < set(lock) and len(lines) < len(lock) * 0.7
    names = {bento_content.canonical(line.split("==")[0]) for line in lines}
    assert not any(n.startswith("apache-airflow") for n in names), names
    for needed in ("bentoml", "feast", "mlflow", "mlflow-skinny", "xgboost", "torch", "scikit-learn", "pandas"):
        assert needed in names
    for extra in ("redis", "hiredis", "s3fs", "psycopg2-binary", "sqlalchemy"):  # the scale-out profile's stores
        assert extra in names
    # every distribution the service imported is shipped (the standard library and setuptools' hook aside)
    imported = {bento_content.canonical(d) for d in bento_content.imported_distributions(found["files"])}
    locked = {bento_content.canonical(line.split("==")[0]) for line in lock}
    assert imported & locked <= names


def test_distribution_closure_follows_extras_and_markers():
    names = bento_content.distribution_closure(["feast[redis]"])
    assert {"feast", "redis", "hiredis", "pandas", "pyarrow"} <= names
    assert "hiredis" not in bento_content.distribution_closure(["feast"])  # the redis extra only
    assert "tomli" not in bento_content.distribution_closure(["bentoml"])  # python_version < '3.11' only


def test_locked_subset_matches_canonical_names():
    lines = ["PyYAML==6.0.3", "typing_extensions==4.16.0", "torch==2.13.0+cpu", "apache-airflow==3.2.2"]
    assert bento_content.locked_subset(lines, {"pyyaml", "typing-extensions", "torch"}) == lines[:3]


def test_the_probe_is_reused_until_a_file_it_imported_changes(tmp_path, monkeypatch):
    """A later build (in this process or another, through the cache folder) gets the kept answer
    without a new interpreter; a changed source file (here: a new import) is probed again."""
    pkg = tmp_path / "src" / "probe_case"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from lifecycle import aliases  # noqa: F401\n")
    runs = []
    real_run = bento_content.subprocess.run
    monkeypatch.setattr(bento_content.subprocess, "run", lambda *a, **k: runs.append(a) or real_run(*a, **k))
    monkeypatch.setattr(bento_content, "_PROBED", {})
    # no bytecode folder appears beside the module: a folder changed during a probe is never kept
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    cache = tmp_path / "cache"

    def probe():
        return bento_content.probe(["probe_case"], [str(pkg.parent)], cache)

    first = probe()
    assert len(runs) == 1 and "lifecycle.aliases" in first["lifecycle"]
    assert probe() == first and len(runs) == 1  # this process
    monkeypatch.setattr(bento_content, "_PROBED", {})
    assert probe() == first and len(runs) == 1  # another process: the cache folder
    (pkg / "__init__.py").write_text("from lifecycle import aliases, contract  # noqa: F401\n")
    changed = probe()
    assert len(runs) == 2 and "lifecycle.contract" in changed["lifecycle"]
    assert probe() == changed and len(runs) == 2
    os.utime(pkg / "__init__.py", ns=(1, 1))  # the same text, another modification time
    assert probe() == changed and len(runs) == 3
    (pkg / "later.py").write_text("")  # a module added beside an imported one: its folder changed
    assert probe() == changed and len(runs) == 4
