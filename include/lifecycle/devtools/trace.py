"""Which files under a folder hold any of some ids, every file read decoded: Parquet files cell by
cell, compressed files (gzip, bzip2, xz, zip and tar members) unpacked, everything else
as its bytes (UTF-8 and UTF-16, so a SQLite database's pages and HTML are searched too, including
the free pages a deletion leaves behind). An id counts as a whole token: not inside a longer word
(a pseudonym's hex digits can spell a short id). The erasure proof's searcher, independent of the erasure:
``python -m lifecycle.devtools.trace <folder> <ids file>`` prints each file and the ids it holds.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import sys
import tarfile
import zipfile
from pathlib import Path

PARQUET, GZIP, BZIP2, XZ, ZIP = b"PAR1", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04"


def _parquet_text(data: bytes) -> bytes:
    """Every cell of a Parquet file as text (nested values included), one per line."""
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    lines = []
    for column in table.columns:
        lines += [str(v) for v in column.to_pylist()]
    return "\n".join([*table.column_names, *lines]).encode()


def _unpacked(data: bytes, depth: int = 0) -> list[bytes]:
    """``data`` and, for a container or a compressed stream, what it holds (recursively)."""
    out = [data]
    if depth > 4:
        return out
    try:
        if data.startswith(PARQUET) and data.endswith(PARQUET):
            out.append(_parquet_text(data))
        elif data.startswith(GZIP):
            out += _unpacked(gzip.decompress(data), depth + 1)
        elif data.startswith(BZIP2):
            out += _unpacked(bz2.decompress(data), depth + 1)
        elif data.startswith(XZ):
            out += _unpacked(lzma.decompress(data), depth + 1)
        elif data.startswith(ZIP):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    out += _unpacked(z.read(name), depth + 1)
        elif len(data) > 262 and data[257:262] == b"ustar":
            with tarfile.open(fileobj=io.BytesIO(data)) as t:
                for member in t.getmembers():
                    if member.isfile():
                        out += _unpacked(t.extractfile(member).read(), depth + 1)
    except Exception:  # noqa: S110 (a file that only looks like a container is searched as bytes)
        pass
    return out


def _patterns(value: str) -> tuple:
    """``value`` as a whole token, in UTF-8 and in UTF-16: not inside a longer word (a short id can
    be a substring of a hex digest, which holds no id)."""
    word = rb"[A-Za-z0-9_]"
    utf8 = re.compile(rb"(?<!" + word + rb")" + re.escape(value.encode()) + rb"(?!" + word + rb")")
    wide = word + rb"\x00"
    utf16 = re.compile(rb"(?<!" + wide + rb")" + re.escape(value.encode("utf-16-le")) + rb"(?!" + wide + rb")")
    return utf8, utf16


def holding(folder: Path, ids: list[str]) -> dict[str, list[str]]:
    """{file (relative to ``folder``): the ids found in it} for every file holding at least one."""
    needles = {i: _patterns(i) for i in ids}
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        blobs = _unpacked(data)
        hits = [i for i, forms in needles.items() if any(f.search(b) for b in blobs for f in forms)]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def main(argv: list[str]) -> int:
    folder, ids_file = Path(argv[0]), Path(argv[1])
    ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
    found = holding(folder, ids)
    for name, hits in found.items():
        print(f"{name}: {', '.join(hits)}")
    print(f"{len(found)} files under {folder} hold any of {len(ids)} ids")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
