"""Keyed hashes that stand for identifiers wherever the raw ids must not be kept: the prediction
log's event and entity ids, the erasure ledger's ids.

A pseudonym is HMAC-SHA256(key, id) cut to 96 bits, 16 characters of URL-safe base64
(HMAC-SHA256-96: a billion ids collide with a probability near 10^-11; 32 hex characters made the
performance join's two id columns over 10 million rows ~400 MB larger, its whole margin under
bench/scale.py's limit). The same id under the same key always gives the same pseudonym, so the
performance and canary joins, the audit and erasure work on them; without the key nobody computes
one from a guessed id (a plain hash of a card number is reversed by hashing every possible
number). The key is ``LIFECYCLE_PSEUDONYM_KEY`` or the key file's content
(``settings.Settings.pseudonym_key``): every process that writes or reads the log needs the same one.
"""

from __future__ import annotations

import base64
import functools
import hashlib

BYTES = 12  # of the HMAC a pseudonym keeps: 16 characters of URL-safe base64
BLOCK = 64  # SHA-256's block size: an HMAC key longer than it is hashed first (RFC 2104)


class Pseudonyms:
    """HMAC-SHA256 under one key, for one id, a list of ids or an Arrow array of them.

    One id or a list (a live request's): the inner and outer hash states of the key are computed
    once and copied per id, at about half the cost of ``hmac.digest`` (1.1 against 2.6 s a million
    ids, both measured on this 2-core machine). An array (a batch's): DuckDB (``_hashed``). Both
    give ``hmac.digest``'s digest (tests/unit/test_pseudonym.py compares them)."""

    def __init__(self, key: bytes):
        if len(key) > BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(BLOCK, b"\0")
        self._inner_pad, self._outer_pad = bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
        self._inner, self._outer = hashlib.sha256(self._inner_pad), hashlib.sha256(self._outer_pad)
        self.key_id = self.one("lifecycle pseudonym key")[:12]  # names the key (a ledger's), never reveals it

    def one(self, value) -> str | None:
        """The pseudonym of ``value`` (its text); None stays None."""
        if value is None:
            return None
        return base64.urlsafe_b64encode(self._digest(str(value).encode())).decode()

    def _digest(self, data: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()[:BYTES]

    def many(self, values) -> list:
        return [self.one(v) for v in values]

    def array(self, values, distinct: bool = False):
        """An Arrow string array of the pseudonyms of ``values`` (an Arrow, numpy or pandas column):
        each distinct id hashed once (an entity recurs across many rows), unless ``distinct`` says
        none repeats (an event id: finding the distinct ones first costs more than it saves)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not isinstance(values, pa.Array | pa.ChunkedArray):
            values = pa.array(values, from_pandas=True)
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        values = values.cast(pa.string())  # an id is its text, as ``one`` hashes it
        if distinct:
            return self._hashed(values)
        ids = pc.unique(values)
        return pc.take(self._hashed(ids), pc.index_in(values, value_set=ids))

    def _hashed(self, values):
        """The pseudonyms of an Arrow array of ids (a null stays null), computed by DuckDB: the same
        HMAC (RFC 2104: the SHA-256 of the outer pad and of the SHA-256 of the inner pad and the
        id), vectorised in C++ with Python's lock released, so batch scoring hashes a chunk's ids on
        the second core while the first scores (``scoring.score_chunks``). Python's own loop
        (``_digest``) holds the lock: 10 million event ids are ~12 s that nothing overlaps."""
        import duckdb
        import pyarrow as pa

        if len(values) == 0:
            return pa.array([], pa.string())
        with duckdb.connect() as con:  # one query for every chunk: ~0.1 s a query, whatever its size
            con.register("ids", pa.table({"id": values.cast(pa.binary())}))  # the id's bytes, NUL included
            hashed = con.sql(
                "select translate(to_base64(unhex(left(sha256($outer || unhex(sha256($inner || id))), $hex))),"
                " '+/', '-_') as p from ids",
                params={"outer": self._outer_pad, "inner": self._inner_pad, "hex": 2 * BYTES},
            ).to_arrow_table()
        return hashed.column("p").cast(pa.string())  # chunked as DuckDB gave it: no copy


@functools.lru_cache(maxsize=4)
def _for(key: bytes) -> Pseudonyms:
    return Pseudonyms(key)


def of(cfg) -> Pseudonyms:
    """The deployment's pseudonyms (``cfg``: ``settings.Settings``)."""
    return _for(cfg.pseudonym_key())
