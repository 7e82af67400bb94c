"""Pseudonyms are HMAC-SHA256 under the deployment's key: checked against the standard library's hmac."""

import base64
import hmac
import stat

import hypothesis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import strategies as st

from lifecycle import pseudonym, settings


def reference(key: bytes, value) -> str:
    return base64.urlsafe_b64encode(hmac.digest(key, str(value).encode(), "sha256")[:12]).decode()


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(key=st.binary(min_size=1, max_size=200), values=st.lists(st.text(max_size=40), max_size=20))
def test_a_pseudonym_is_the_hmac_of_the_id_under_the_key(key, values):
    names = pseudonym.Pseudonyms(key)
    assert names.many(values) == [reference(key, v) for v in values]  # keys longer than a block included
    assert names.array(pa.array(values, pa.string())).to_pylist() == [reference(key, v) for v in values]


def test_arrays_of_any_kind_hash_each_value_and_keep_nulls():
    names = pseudonym.Pseudonyms(b"k" * 32)
    ids = ["card_1", None, "card_2", "card_1"]
    want = [reference(b"k" * 32, "card_1"), None, reference(b"k" * 32, "card_2"), reference(b"k" * 32, "card_1")]
    assert names.many(ids) == want
    assert names.array(pd.Series(ids, dtype="string[pyarrow]")).to_pylist() == want
    assert names.array(np.array(ids, dtype=object)).to_pylist() == want
    assert names.array(pa.chunked_array([ids[:2], ids[2:]])).to_pylist() == want
    assert names.array(pa.array(ids).dictionary_encode()).to_pylist() == want
    assert names.array(pa.array(ids), distinct=True).to_pylist() == want  # hashed one by one: the same
    assert names.array(pa.array(ids).slice(1), distinct=True).to_pylist() == want[1:]


def test_another_key_gives_other_pseudonyms_and_another_key_id():
    one, two = pseudonym.Pseudonyms(b"a" * 32), pseudonym.Pseudonyms(b"b" * 32)
    assert one.one("card_1") != two.one("card_1") and one.key_id != two.key_id
    assert one.key_id == pseudonym.Pseudonyms(b"a" * 32).key_id and len(one.key_id) == 12
    assert "card_1" not in one.one("card_1")


def test_the_key_comes_from_the_setting_or_a_generated_owner_only_file(state, monkeypatch):
    cfg = settings.load()
    key = cfg.pseudonym_key()
    assert cfg.pseudonym_key_file.read_text().strip().encode() == key and len(key) >= 32
    assert stat.S_IMODE(cfg.pseudonym_key_file.stat().st_mode) == 0o600
    assert settings.load().pseudonym_key() == key  # read again, never regenerated
    monkeypatch.setenv("LIFECYCLE_PSEUDONYM_KEY", "x" * 40)
    assert settings.load().pseudonym_key() == b"x" * 40
    assert "x" * 40 not in repr(settings.load())
    monkeypatch.setenv("LIFECYCLE_PSEUDONYM_KEY", "short")
    with pytest.raises(settings.SettingError, match="LIFECYCLE_PSEUDONYM_KEY: must have at least 32 characters"):
        settings.load()


def test_a_chunked_array_is_hashed_in_one_query_to_the_same_pseudonyms():
    names = pseudonym.Pseudonyms(b"k" * 32)
    ids = [f"card_{i % 7}" for i in range(20)] + [None]
    want = [None if i is None else reference(b"k" * 32, i) for i in ids]
    for distinct in (False, True):
        assert names.array(pa.chunked_array([ids[:10], [], ids[10:]]), distinct=distinct).to_pylist() == want
    assert names.array(pa.array([1, 2], pa.int64())).to_pylist() == [reference(b"k" * 32, i) for i in (1, 2)]
    assert names.array(pa.array([], pa.string())).to_pylist() == []
    assert names.array(pa.chunked_array([], pa.string()), distinct=True).to_pylist() == []
