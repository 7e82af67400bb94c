"""The bento's content: the modules the live service imports, the locked packages it needs, no Airflow."""

from pathlib import Path

import pytest

from lifecycle import bento_content, packaging


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    dest = tmp_path_factory.mktemp("bento-ctx")
    return dest, bento_content.build_context(dest)


def test_the_context_holds_the_serving_modules_only(context):
    dest, _ = context
    files = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert {"lifecycle/__init__.py", "lifecycle/serving.py", "lifecycle/live.py"} <= files
    assert "lifecycle/lake_offline_store.py" in files  # named by the rendered feature_store.yaml, imported by Feast
    assert not any(f.startswith(("lifecycle/platform/", "lifecycle/devtools/", "dags/")) for f in files), files
    # the stage modules the DAGs run (and the lake, which imports Airflow) stay out
    assert not files & {f"lifecycle/{m}.py" for m in ("training", "packaging", "lake", "demo", "sandbox", "env")}


def test_extra_packages_are_copied_whole_and_their_imports_followed(tmp_path, monkeypatch):
    root = tmp_path / "include"
    pkg = root / "lifecycle" / "usecases" / "demo_case"
    pkg.mkdir(parents=True)
    (root / "lifecycle" / "usecases" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from lifecycle import schema  # noqa: F401\n")
    (pkg / "contract.yaml").write_text("name: demo\n")
    real = bento_content.package_root()
    # a package root of its own that still holds the real lifecycle package next to the extra one
    for f in (real / "lifecycle").glob("*.py"):
        (root / "lifecycle" / f.name).write_text(f.read_text())
    monkeypatch.setattr(bento_content, "package_root", lambda: root)
    dest = tmp_path / "ctx"
    found = bento_content.build_context(dest, [pkg])
    assert "lifecycle.usecases.demo_case" in found["lifecycle"]
    assert (dest / "lifecycle/usecases/demo_case/contract.yaml").is_file()
    assert (dest / "lifecycle/usecases/__init__.py").is_file()
    assert (dest / "lifecycle/schema.py").is_file()


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


def test_module_name_of_a_package_folder():
    root = bento_content.package_root()
    assert bento_content.module_name(root / "lifecycle" / "platform") == "lifecycle.platform"
    assert Path(bento_content.package_root(), "lifecycle", "serving.py").is_file()
