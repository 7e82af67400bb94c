"""Arrow kernels the prediction log's reader and the performance join share: they keep millions
of ids in Arrow buffers and integer codes, never one Python object each."""

from __future__ import annotations

import pandas as pd


def first_rows(keys: list, prefer=None):
    """Positions (ascending) of the first row of each distinct combination of ``keys`` (Arrow string
    arrays, or integer numpy codes), a row where ``prefer`` is true before any other: a
    ``drop_duplicates`` on integer codes (Arrow's hashing, numpy's sort) that never turns millions
    of strings into Python objects."""
    import numpy as np
    import pyarrow.compute as pc

    codes = None  # one int64 code per row, built in place (10 million rows: 80 MB an array)
    for key in keys:
        if isinstance(key, np.ndarray):
            code, size = key, int(key.max(initial=0)) + 1
        else:
            encoded = (
                pc.dictionary_encode(key).combine_chunks() if hasattr(key, "chunks") else pc.dictionary_encode(key)
            )
            code = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64) + 1  # null: its own code
            size = len(encoded.dictionary) + 1
        if codes is None:
            codes = np.array(code, np.int64)  # a copy: the caller's array stays as it was
        else:
            codes *= size
            codes += code
        del code
    if codes is None or not len(codes):
        return np.arange(0)
    if prefer is not None:  # a preferred row sorts first within its combination
        codes *= 2
        codes += ~np.asarray(prefer, bool)
    order = np.argsort(codes, kind="stable")  # one sort (lexsort on two keys held ~2x the memory)
    ranked = codes[order]
    del codes
    if prefer is not None:
        ranked >>= 1
    first = np.ones(len(order), bool)
    first[1:] = ranked[1:] != ranked[:-1]
    del ranked
    out = order[first]
    del order
    out.sort()
    return out


def equals(column, value: str):
    """``column == value`` as a numpy bool array, for a string or a dictionary column (Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.equal(column, value).to_numpy(zero_copy_only=False)


def arrow_strings(type_):
    """pandas dtypes for an Arrow table's ``to_pandas``: strings stay Arrow-backed, dictionaries
    become categoricals, the rest numpy."""
    import pyarrow as pa

    return pd.ArrowDtype(type_) if pa.types.is_string(type_) or pa.types.is_large_string(type_) else None


def holding(table, wanted: dict):
    """Per row of an Arrow table, as a boolean array: does one of the ``wanted`` columns hold one of
    its values (``{column: values}``; a column the table lacks holds none)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pa.array([False] * table.num_rows)
    for column, values in wanted.items():
        if column in table.column_names and values:
            hit = pc.is_in(table[column].cast(pa.string()), value_set=pa.array(sorted(values), pa.string()))
            found = pc.or_(found, pc.fill_null(hit, False))
    return found
