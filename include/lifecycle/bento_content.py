"""What the bento ships: the modules the live service imports and the locked packages they need.

The bento is the code artifact of the package stage (``lifecycle.packaging.build``). It holds the
``lifecycle`` modules that importing the service pulls in, computed in a fresh interpreter so that
it follows the code as it changes, and the lines of ``requirements.lock`` in the install-requires
closure of what the service uses. No DAG, no platform plumbing (``lifecycle.platform``), no
development support (``lifecycle.devtools``) and no Airflow.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import lifecycle

# What `bentoml serve` imports: the service module at start, the live model (lazily) on the first
# request, and the model classes registered versions unpickle to (by name, when a version loads: a
# probe that only imports modules does not see them).
SERVING_MODULES = ("lifecycle.serving", "lifecycle.live", "lifecycle.modeling")

# What the service uses at run time besides the modules it imports at start (those are added by
# `imported_distributions`): requirement strings, extras included, whose closure the bento installs.
SERVING_DISTRIBUTIONS = (
    "bentoml",  # the service
    "feast[redis]",  # online features: SQLite or Redis online store
    "SQLAlchemy",  # Feast's SQL registry (scale-out profile) ...
    "psycopg2-binary",  # ... in PostgreSQL (settings' database_url driver: postgresql+psycopg2)
    "mlflow",  # the registry's aliases, pyfunc loading (mlflow-skinny and mlflow-tracing come with it)
    "scikit-learn",  # the flavours the model candidates unpickle to
    "xgboost",
    "torch",
    "pandas",
    "numpy",
    "pyarrow",  # the prediction log's parquet files
    "s3fs",  # the prediction log on S3 (scale-out profile), through fsspec
)

PROJECT_DISTRIBUTION = "model-lifecycle"  # this library itself: the bento ships its source, not the package


def package_root() -> Path:
    """The folder that holds the ``lifecycle`` package (``include/``)."""
    return Path(lifecycle.__file__).resolve().parent.parent


def config_modules() -> tuple[str, ...]:
    """Modules that the rendered feature_store.yaml names by class path: Feast imports them when it
    loads the config, so the service needs them though it never imports them itself."""
    from lifecycle.feature_store import STORE_YAML

    return tuple(sorted({m.group(1) for m in re.finditer(r"type:\s*(lifecycle(?:\.\w+)+)\.\w+", STORE_YAML)}))


_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps({
    "lifecycle": {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.split(".")[0] == "lifecycle"},
    "files": sorted({f for m in list(sys.modules.values()) if isinstance(f := getattr(m, "__file__", None), str)}),
}))
"""


def probe(roots: Iterable[str], paths: Iterable[str] = ()) -> dict:
    """Import ``roots`` in a fresh interpreter on this package root (and ``paths``); the
    ``lifecycle`` modules that ended up imported (name -> file) and the files of every imported module."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(package_root()), *paths, os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *roots], env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f"importing {list(roots)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def serving_roots(extra_packages: Iterable[Path] = ()) -> tuple[str, ...]:
    """What the probe imports: the service, the modules its config names, the extra top-level packages."""
    return (*SERVING_MODULES, *config_modules(), *(Path(p).name for p in extra_packages))


def source_files(modules: dict[str, str | None]) -> list[Path]:
    """The files of imported ``lifecycle`` modules, relative to the package root."""
    root = package_root()
    return sorted({Path(f).resolve().relative_to(root) for f in modules.values() if f})


def build_context(dest: Path, extra_packages: Iterable[Path] = ()) -> dict:
    """Lay out in ``dest`` the bento's source tree: the ``lifecycle`` modules that importing the
    service (and ``extra_packages``, top-level package folders the service loads by setting, such
    as the use case's) pulls in, and each extra package folder whole, at the top of the tree.
    Returns the probe's answer (see ``probe``)."""
    extra_packages = [Path(p).resolve() for p in extra_packages]
    found = probe(serving_roots(extra_packages), [str(p.parent) for p in extra_packages])
    root = package_root()
    for rel in source_files(found["lifecycle"]):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    for pkg in extra_packages:
        shutil.copytree(pkg, dest / pkg.name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return found


SOURCES = {".py", ".so", ".pyd"}  # the files of a distribution that an imported module can be


def imported_distributions(files: Iterable[str]) -> set[str]:
    """The installed distributions that hold these module files (the standard library and this
    project left out). By file, not by top-level name: a namespace such as ``opentelemetry`` or
    ``google`` is shared by many distributions, of which only some are imported."""
    wanted = {str(Path(f).resolve()) for f in files}
    found = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if canonical(name) == PROJECT_DISTRIBUTION or name in found:
            continue
        if any(str(Path(dist.locate_file(f)).resolve()) in wanted for f in dist.files or () if f.suffix in SOURCES):
            found.add(name)
    return found


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def distribution_closure(roots: Iterable[str]) -> set[str]:
    """Canonical names of the distributions in the install-requires closure of ``roots``
    (requirement strings, extras honoured), walking the installed metadata with markers evaluated."""
    from packaging.requirements import Requirement

    seen: set[tuple[str, str]] = set()  # (distribution, extra or "")
    todo = [(Requirement(r), True) for r in roots]
    while todo:
        req, is_root = todo.pop()
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError:
            if is_root:
                raise
            continue  # an optional dependency this environment does not have
        name = canonical(dist.metadata["Name"])
        wanted = {(name, "")} | {(name, canonical(e)) for e in req.extras}
        new = wanted - seen
        seen |= new
        for dep in map(Requirement, dist.requires or ()):
            for _, extra in new:
                if dep.marker is None:
                    applies = extra == ""
                else:
                    applies = dep.marker.evaluate({"extra": extra}) and (extra == "" or "extra" in str(dep.marker))
                if applies:
                    todo.append((dep, False))
    return {name for name, _ in seen}


def serving_distributions(found: dict) -> set[str]:
    """The closure of what the service uses: ``SERVING_DISTRIBUTIONS`` and the distributions of the
    modules it imported in the probe (``found``)."""
    return distribution_closure({*SERVING_DISTRIBUTIONS, *imported_distributions(found["files"])})


def locked_subset(lock_lines: Iterable[str], names: set[str]) -> list[str]:
    """The ``name==version`` lines of the lock whose distribution is in ``names``."""
    return [line for line in lock_lines if canonical(re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0]) in names]
