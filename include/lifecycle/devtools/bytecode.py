"""Bytecode at install for just the installed modules the project's processes import.

Compiling all of site-packages takes ~47 s on 2 cores, mostly for modules nothing here imports
(plotly's 13,600 validators, test suites). Without bytecode a demo's processes compile what they
import as they start, which makes it ~30 s slower. ``bytecode.lock`` lists the site-packages
folders a demo imported modules from; compiling the modules in those ~1,300 folders takes ~15 s. A
folder missing from the list costs speed, never correctness: Python compiles a module that has
no bytecode when it is imported.

``python -m lifecycle.devtools.bytecode compile`` compiles the listed folders on every usable core;
``record`` rewrites the list from the bytecode present in site-packages (``make bytecode-lock``
runs a demo in a site-packages without bytecode, then records).
"""

from __future__ import annotations

import compileall
import functools
import os
import sys
import sysconfig
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from lifecycle import settings

LOCK = settings.PROJECT_ROOT / "bytecode.lock"
HEADER = (
    "# The site-packages folders a demo imported modules from: make install compiles the modules in\n"
    "# them (lifecycle.devtools.bytecode); make bytecode-lock records them anew after make lock.\n"
)


def site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def folders(lock: Path = LOCK) -> list[str]:
    """The folders ``lock`` lists, relative to site-packages (``.`` is site-packages itself)."""
    lines = (line.strip() for line in lock.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def compile_folders(names: list[str], site: Path) -> int:
    """Compile the modules directly in each folder on every core this process may use; return how
    many have bytecode now (compiled, or already up to date).

    A folder that is gone is skipped, and so is a module that does not compile (torch ships one in
    a newer Python's syntax), as pip's own compile step skips it."""
    files = sorted(str(path) for name in names if (site / name).is_dir() for path in (site / name).glob("*.py"))
    with ProcessPoolExecutor(len(os.sched_getaffinity(0))) as pool:
        done = pool.map(functools.partial(compileall.compile_file, quiet=2), files, chunksize=64)
        return sum(map(bool, done))


def record(site: Path, lock: Path = LOCK) -> int:
    """Write the folders of ``site`` holding bytecode of this Python to ``lock``; return how many."""
    tag = sys.implementation.cache_tag
    found = {
        cache.parent.relative_to(site).as_posix()
        for cache in site.rglob("__pycache__")
        if any(cache.glob(f"*.{tag}.pyc"))
    }
    lock.write_text(HEADER + "".join(f"{name}\n" for name in sorted(found)))
    return len(found)


def main(argv: list[str]) -> int:
    site = site_packages()
    if argv == ["compile"]:
        names = folders()
        print(f"bytecode: {compile_folders(names, site)} modules in {len(names)} folders have it")
        return 0
    if argv == ["record"]:
        print(f"bytecode: {record(site)} folders recorded in {LOCK.name}")
        return 0
    print("usage: python -m lifecycle.devtools.bytecode compile|record", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
