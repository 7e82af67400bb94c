"""Erasure inside one landing file: the erased rows' lines go, every other byte stays (CRLF line
ends, quoted commas and line breaks included); labels go by their event's pseudonym."""

import io

import pyarrow as pa
import pyarrow.parquet as pq

from lifecycle import erasure

HEADER = "transaction_id,card_id,merchant_id,note\r\n"
ROWS = [
    't1,c1,m1,"plain"\r\n',
    't2,c2,m1,"a, comma"\r\n',
    't3,c1,m2,"two\r\nlines"\r\n',
    "t4,c3,m2,\r\n",
]


def test_a_csv_loses_the_erased_lines_and_keeps_every_other_byte(state):
    work = erasure.Erasure("card_id", ["c1"], "test")
    new, gone = work._csv((HEADER + "".join(ROWS)).encode())
    assert gone == 2 and new.decode() == HEADER + ROWS[1] + ROWS[3]
    assert work.events == {"t1", "t3"}  # their labels go too
    labels = "transaction_id,is_fraud\nt3,1\nt2,0\n"
    new, gone = work._csv(labels.encode())
    assert gone == 1 and new.decode() == "transaction_id,is_fraud\nt2,0\n"
    assert work._csv(b"transaction_id,is_fraud\nt9,0\n") == (None, 0)  # untouched: no new bytes


def test_a_parquet_file_keeps_the_other_rows_and_its_schema(state):
    work = erasure.Erasure("card_id", ["c1"], "test")
    table = pa.table({"transaction_id": ["t1", "t2", "t3"], "card_id": ["c1", "c2", None], "amount": [1.0, 2.0, 3.0]})
    table = table.replace_schema_metadata({b"origin": b"test"})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    new, gone = work._parquet(buf.getvalue())
    kept = pq.read_table(io.BytesIO(new))
    assert gone == 1 and kept.equals(table.slice(1)) and kept.schema.metadata == {b"origin": b"test"}


def test_events_sharing_a_card_and_a_second_go_together_and_only_their_labels_follow(state):
    """Two events of the card at the same second (a tie), another card's event in that second, one of
    the card's events never labeled: both of its events go, the other card's stays, and of the labels
    only the one its event had goes (checked against a pandas filter written here)."""
    import pandas as pd

    events = pa.table(
        {
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "card_id": ["c1", "c1", "c2", "c1"],
            "event_timestamp": pa.array([pd.Timestamp("2026-10-01 12:00:00", tz="UTC")] * 3 + [None]),
        }
    )
    labels = pa.table({"transaction_id": ["t1", "t3", "t9"], "is_fraud": [1, 0, 1]})  # t2, t4: never labeled
    work = erasure.Erasure("card_id", ["c1"], "test")
    buf, lab = io.BytesIO(), io.BytesIO()
    pq.write_table(events, buf)
    pq.write_table(labels, lab)
    kept_events, gone = work._parquet(buf.getvalue())
    kept_labels, gone_labels = work._parquet(lab.getvalue())
    frame, label_frame = events.to_pandas(), labels.to_pandas()
    mine = set(frame.loc[frame["card_id"] == "c1", "transaction_id"])
    want = frame[frame["card_id"] != "c1"].reset_index(drop=True)
    want_labels = label_frame[~label_frame["transaction_id"].isin(mine)].reset_index(drop=True)
    assert gone == 3 and gone_labels == 1
    pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(kept_events)).to_pandas(), want)
    pd.testing.assert_frame_equal(pq.read_table(io.BytesIO(kept_labels)).to_pandas(), want_labels)
