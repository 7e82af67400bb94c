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
CHUNK = 1 << 20  # ids hashed at a time by ``Pseudonyms.array``
BLOCK = 64  # SHA-256's block size: an HMAC key longer than it is hashed first (RFC 2104)


class Pseudonyms:
    """HMAC-SHA256 under one key, for one id, a list of ids or an Arrow array of them.

    The inner and outer hash states of the key are computed once and copied per id: the same
    digest as ``hmac.digest`` (tests/unit/test_pseudonym.py compares them), at about half its cost
    per id here (1.1 against 2.6 s a million ids, both measured on this 2-core machine)."""

    def __init__(self, key: bytes):
        if len(key) > BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
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
        """An Arrow string array of the pseudonyms of ``values`` (an Arrow, numpy or pandas column),
        ``CHUNK`` values at a time; each distinct id of a chunk is hashed once (an entity recurs
        across many rows), unless ``distinct`` says none repeats (an event id: finding the distinct
        ones first would cost 0.45 s a million for nothing)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not isinstance(values, pa.Array | pa.ChunkedArray):
            values = pa.array(values, from_pandas=True)
        chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
        out = []
        for chunk in chunks:
            for start in range(0, len(chunk), CHUNK):
                part = chunk.slice(start, CHUNK)
                if distinct and not pa.types.is_dictionary(part.type):
                    out.append(self._hashed(part))
                    continue
                if not pa.types.is_dictionary(part.type):
                    part = pc.dictionary_encode(part.cast(pa.string()))
                out.append(pc.take(self._hashed(part.dictionary), part.indices))
        if len(out) == 1:
            return out[0]
        return pa.chunked_array(out, pa.string())

    def _hashed(self, values):
        """The pseudonyms of an Arrow array of ids (a null stays null). The digests are base64-encoded
        together into one buffer (12 bytes are 16 characters: each pseudonym at a fixed offset), not
        one Python string each: 2.2 against 1.2 s a million distinct ids, measured on this machine."""
        import numpy as np
        import pyarrow as pa

        raw = values.cast(pa.binary()).fill_null(b"").to_pylist()
        text = base64.urlsafe_b64encode(b"".join(map(self._digest, raw)))
        offsets = np.arange(len(raw) + 1, dtype=np.int32) * (len(text) // max(len(raw), 1))
        validity = values.is_valid().buffers()[1] if values.null_count else None
        return pa.StringArray.from_buffers(len(raw), pa.py_buffer(offsets), pa.py_buffer(text), validity)


@functools.lru_cache(maxsize=4)
def _for(key: bytes) -> Pseudonyms:
    return Pseudonyms(key)


def of(cfg) -> Pseudonyms:
    """The deployment's pseudonyms (``cfg``: ``settings.Settings``)."""
    return _for(cfg.pseudonym_key())
