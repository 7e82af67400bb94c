"""What the bento ships: the modules the live service imports and the locked packages they need.

The bento is the code artifact of the package stage (``lifecycle.packaging.build``). It holds the
``lifecycle`` modules that importing the service pulls in, computed in a fresh interpreter so that
it follows the code as it changes, and the lines of ``requirements.lock`` in the install-requires
closure of what the service uses. No DAG, no platform plumbing (``lifecycle.platform``), no
development support (``lifecycle.devtools``) and no Airflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
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


_PROBED: dict[str, dict] = {}  # this process's probes, by key (see ``probe``)


def probe(roots: Iterable[str], paths: Iterable[str] = (), cache_dir: Path | None = None) -> dict:
    """Import ``roots`` in a fresh interpreter on this package root (and ``paths``); the
    ``lifecycle`` modules that ended up imported (name -> file) and the files of every imported module.

    A fresh interpreter importing torch, Feast, MLflow and BentoML costs ~7 s of CPU on this machine
    kind, and every bento build asks the same question. The answer is kept (in this process, and as
    a file in ``cache_dir`` for later processes) with the size and modification time of every file
    it names and of their folders, and reused only while none of them changed: an import that
    changes is in a changed file, and a module or ``.pth`` file added beside an imported one changes
    its folder. A package installed into a folder that no imported module lives in is not seen."""
    roots, paths = list(roots), list(paths)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(package_root()), *paths, os.environ.get("PYTHONPATH")])),
    }
    question = json.dumps([_PROBE, sys.executable, os.getcwd(), env["PYTHONPATH"], roots])
    key = hashlib.sha256(question.encode()).hexdigest()[:24]
    kept = _PROBED.get(key) or (cache_dir and _read_kept(cache_dir / f"{key}.json"))
    if kept and kept.get("stamp") == _stamp(kept["found"]["files"])[0]:
        _PROBED[key] = kept
        return kept["found"]
    started = time.time_ns()
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *roots], env=env, capture_output=True, text=True, check=False, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f"importing {roots} failed:\n{out.stderr[-3000:]}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    stamp, newest = _stamp(found["files"])
    if newest >= started:  # a file changed while the probe ran: the answer may predate it
        return found
    kept = _PROBED[key] = {"found": found, "stamp": stamp}
    if cache_dir:
        with contextlib.suppress(OSError):  # a cache that cannot be written is a cache miss next time
            cache_dir.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(dir=cache_dir, prefix=f".{key}.")
            with os.fdopen(fd, "w") as f:
                json.dump(kept, f)
            os.replace(partial, cache_dir / f"{key}.json")  # atomic: readers see the old file or this one
    return found


def _stamp(files: list[str]) -> tuple[str, int]:
    """Size and modification time of every file and of every folder holding one, hashed (a missing
    one changes it too), and the newest modification time among them."""
    digest, newest = hashlib.sha256(), 0
    for f in sorted({*files, *(os.path.dirname(f) for f in files)}):
        try:
            st = os.stat(f)
            digest.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            newest = max(newest, st.st_mtime_ns)
        except OSError:
            digest.update(f"{f}\0missing\n".encode())
    return digest.hexdigest(), newest


def _read_kept(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def serving_roots(extra_packages: Iterable[Path] = (), modules: Iterable[str] = ()) -> tuple[str, ...]:
    """What the probe imports: the service, the modules its config names, the extra top-level
    packages and ``modules`` (the use case the service loads by setting: named, so that a probe for
    another use case of the same package is another question)."""
    return (*SERVING_MODULES, *config_modules(), *(Path(p).name for p in extra_packages), *modules)


def source_files(modules: dict[str, str | None]) -> list[Path]:
    """The files of imported ``lifecycle`` modules, relative to the package root."""
    root = package_root()
    return sorted({Path(f).resolve().relative_to(root) for f in modules.values() if f})


def build_context(
    dest: Path, extra_packages: Iterable[Path] = (), cache_dir: Path | None = None, modules: Iterable[str] = ()
) -> dict:
    """Lay out in ``dest`` the bento's source tree: the ``lifecycle`` modules that importing the
    service (and ``extra_packages``, top-level package folders the service loads by setting, such
    as the use case's) pulls in, and each extra package folder whole, at the top of the tree.
    Returns the probe's answer (see ``probe``, which keeps it in ``cache_dir``)."""
    extra_packages = [Path(p).resolve() for p in extra_packages]
    found = probe(serving_roots(extra_packages, modules), [str(p.parent) for p in extra_packages], cache_dir)
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
    wanted = {os.path.realpath(f) for f in files}
    found = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if canonical(name) == PROJECT_DISTRIBUTION or name in found:
            continue
        # the folder resolved once (a venv's lib64 links to lib), not each of its files: 3.0 → 0.7 s
        base = os.path.realpath(dist.locate_file(""))
        if any(os.path.normpath(os.path.join(base, f)) in wanted for f in dist.files or () if f.suffix in SOURCES):
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
