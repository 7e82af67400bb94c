"""The prediction log on local files: flushes add files, a compacting read merges them and loses nothing."""

import datetime as dt
import threading
import uuid
from pathlib import Path

import hypothesis
import numpy as np
import pandas as pd
from hypothesis import strategies as st

from lifecycle import (
    columnar,
    contract,
    prediction_log,
    prediction_maintenance,
    prediction_reader,
    prediction_writer,
    pseudonym,
    settings,
)

DAYS = [dt.date(2026, 10, 1), dt.date(2026, 10, 2)]


def _chunk(n: int, arm: str = "champion", source: str = "live", days: list = DAYS) -> dict[str, list]:
    """``n`` rows whose event days take turns over ``days``."""
    ids = [uuid.uuid4().hex for _ in range(n)]
    part = {
        "transaction_id": ids,
        "card_id": ["c"] * n,
        "merchant_id": ["m"] * n,
        "event_timestamp": [dt.datetime.combine(days[i % len(days)], dt.time(12), dt.UTC) for i in range(n)],
    }
    return prediction_log.rows(
        contract.current(),
        ids,
        part,
        {"amount": np.arange(n, dtype=float)},
        np.full(n, 0.1),
        "1",
        arm,
        3.0,
        dt.datetime.now(dt.UTC),
        source,
        pseudonym.of(settings.load()),
    )


def _files(day: dt.date) -> list[str]:
    return sorted(p.name for p in (Path(prediction_log.folder(settings.load())) / f"date={day}").iterdir())


def _flushed(log: prediction_writer.PredictionLog, flushes: int, rows: int) -> list[str]:
    ids = []
    for _ in range(flushes):
        chunk = _chunk(rows)
        ids += chunk["request_id"]
        log.append(chunk)
        log.flush()
    return ids


def test_compaction_merges_a_days_flushes_into_one_file_and_keeps_every_row(state):
    cfg = settings.load()
    log = prediction_writer.PredictionLog(cfg)
    ids = _flushed(log, prediction_maintenance.COMPACT_AT, 5)
    log.append(_chunk(3))  # the same request logged twice (a retried flush) counts once
    again = {k: v[:1] for k, v in _chunk(1).items()} | {"request_id": [ids[0]]}
    log.append(again)
    log.flush()
    prediction_writer.write_batch(cfg, DAYS[0], "1", "champion", _chunk(4, source="batch", days=DAYS[:1]))
    before = prediction_reader.read(cfg)
    assert len(_files(DAYS[0])) == prediction_maintenance.COMPACT_AT + 2  # one per flush, and the batch file

    merged = prediction_maintenance.compact(cfg)
    assert merged == {
        str(DAYS[0]): prediction_maintenance.COMPACT_AT + 1,
        str(DAYS[1]): prediction_maintenance.COMPACT_AT + 1,
    }
    compacted = prediction_reader.read(cfg)
    pd.testing.assert_frame_equal(
        compacted.sort_values(["request_id", "arm"], ignore_index=True),
        before.sort_values(["request_id", "arm"], ignore_index=True),
        check_like=True,
    )
    assert len(before) == len(ids) + 3 + 4 and set(ids) <= set(before["request_id"])
    for day in DAYS:
        live = [f for f in _files(day) if not f.startswith("batch-")]
        assert len(live) == 1 and live[0].startswith("compact-")
    assert "batch-v1-champion.parquet" in _files(DAYS[0])
    assert len(prediction_reader.read(cfg, days=[DAYS[1]])) == len(before[before["event_timestamp"].dt.date == DAYS[1]])


def test_a_day_with_few_files_is_left_alone_and_a_read_never_writes(state):
    cfg = settings.load()
    log = prediction_writer.PredictionLog(cfg)
    _flushed(log, prediction_maintenance.COMPACT_AT - 1, 2)
    files = _files(DAYS[0])
    assert prediction_maintenance.compact(cfg) == {}
    assert _files(DAYS[0]) == files
    log.append(_chunk(2))
    log.flush()
    prediction_reader.read(cfg)
    assert _files(DAYS[0]) == [*files, _files(DAYS[0])[-1]]  # reading merged nothing
    assert set(prediction_maintenance.compact(cfg)) == set(map(str, DAYS))
    assert prediction_maintenance.compact(cfg) == {}  # one compact file and no new flush: nothing to merge
    assert [f.split("-")[0] for f in _files(DAYS[0])] == ["compact"]


def test_a_file_removed_between_listing_and_reading_is_listed_again(state, monkeypatch):
    cfg = settings.load()
    log = prediction_writer.PredictionLog(cfg)
    ids = _flushed(log, 3, 4)
    real = prediction_log.listing
    calls = []

    def listing_then_compaction(fs, base, days):
        found = real(fs, base, days)
        calls.append(found)
        if len(calls) == 1:  # another reader compacts right after this one listed
            day, files = next(iter(found.items()))
            prediction_maintenance._replace(fs, f"{base}/{day}", files, prediction_reader.frame(fs.cat(files), files))
        return found

    monkeypatch.setattr(prediction_log, "listing", listing_then_compaction)
    assert set(prediction_reader.read(cfg)["request_id"]) == set(ids) and len(calls) == 2


class _Model:
    """A model stub with LifecycleModel's surface: its inputs (numbers with NaNs, a category) and a score."""

    def inputs(self, frame):
        return {
            "amount": frame["amount"].to_numpy(float),
            "ratio": np.where(frame["amount"].to_numpy() > 5, np.nan, 0.5),
            "channel": np.asarray(frame["channel"], dtype=object).astype(str),
        }

    def score(self, inputs):
        return inputs["amount"] / 100


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "card_id": [f"c{i % 3}" for i in range(n)],
            "merchant_id": ["m1"] * n,
            "amount": np.arange(n, dtype=float),
            "channel": ["pos", "online"] * (n // 2) + ["pos"] * (n % 2),
            "event_timestamp": pd.Timestamp("2026-10-01 12:00", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
        }
    )


def test_status_counts_rows_a_flush_is_writing(state, monkeypatch):
    """A row is in exactly one of buffered, writing, logged, also while a flush's write is under way."""
    log = prediction_writer.PredictionLog(settings.load())
    entered, release = threading.Event(), threading.Event()
    publish = log._publish

    def held_publish(writer, path):
        entered.set()
        release.wait(10)
        return publish(writer, path)

    monkeypatch.setattr(log, "_publish", held_publish)
    log.append(_chunk(5))
    flusher = threading.Thread(target=log.flush)
    flusher.start()
    assert entered.wait(10)
    log.append(_chunk(2))
    during = log.status()
    release.set()
    flusher.join(10)
    after = log.status()
    assert (during["buffered_rows"], during["writing_rows"], during["logged_rows"]) == (2, 5, 0)
    assert (after["buffered_rows"], after["writing_rows"], after["logged_rows"]) == (2, 0, 5)


def test_the_batch_array_path_writes_the_same_file_as_the_list_path(state):
    """Batch scoring keeps arrays end to end (chunked); the file holds what the list rows give."""
    import pyarrow.parquet as pq

    from lifecycle import scoring

    cfg, uc, model = settings.load(), contract.current(), _Model()
    frame, served = _frame(11), dt.datetime(2026, 10, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    inputs = model.inputs(frame)
    as_lists = prediction_log.rows(
        uc,
        "batch-v3-",
        {c: frame[c] for c in uc.keys},
        inputs,
        model.score(inputs),
        "3",
        "champion",
        0.25,
        served,
        "batch",
        pseudonym.of(cfg),
    )
    chunks = scoring.score_chunks(uc, frame, model, "3", "champion", served, chunk_rows=4)
    chunks = ({**c, "latency_ms": pa_repeat(0.25, len(c["request_id"]))} for c in chunks)  # measured: pinned
    lists = pq.read_table(prediction_writer.write_batch(cfg, DAYS[0], "3", "champion", as_lists))
    arrays = pq.read_table(prediction_writer.write_batch(cfg, DAYS[1], "3", "champion", chunks))
    assert arrays.schema == lists.schema and arrays.num_rows == 11
    pd.testing.assert_frame_equal(arrays.to_pandas(), lists.to_pandas())  # NaN equals NaN here, not in Arrow
    assert np.isnan(arrays["input_ratio"].to_numpy()[6:]).all()  # NaN stays NaN, as in the list path
    # frames read one after the other (Parquet batches): slices 4, 1, 4, 2, each hashed ahead, in order
    parts = scoring.score_chunks(uc, iter([frame.iloc[:5], frame.iloc[5:]]), model, "3", "champion", served, 4)
    parts = [{**c, "latency_ms": pa_repeat(0.25, len(c["request_id"]))} for c in parts]
    assert [len(c["request_id"]) for c in parts] == [4, 1, 4, 2]
    read = pq.read_table(prediction_writer.write_batch(cfg, DAYS[0], "3", "champion", iter(parts)))
    pd.testing.assert_frame_equal(read.to_pandas(), lists.to_pandas())


def pa_repeat(value, n):
    import pyarrow as pa

    return pa.repeat(pa.scalar(value), n)


def test_a_read_of_some_columns_gives_the_same_rows_as_a_full_read(state):
    cfg = settings.load()
    log = prediction_writer.PredictionLog(cfg)
    _flushed(log, 3, 4)
    prediction_writer.write_batch(cfg, DAYS[0], "1", "champion", _chunk(4, source="batch", days=DAYS[:1]))
    wanted = ["transaction_id", "fraud_probability", "model_version", "arm", "source"]
    full = prediction_reader.read(cfg)[wanted]
    some = prediction_reader.read(cfg, columns=wanted)
    assert list(some.columns) == wanted and isinstance(some["transaction_id"].dtype, pd.ArrowDtype)
    pd.testing.assert_frame_equal(some.astype(full.dtypes.to_dict()), full)
    assert len(prediction_reader.read(cfg, source="batch", columns=wanted)) == 4


def test_the_lean_join_keeps_what_a_pandas_merge_keeps(state):
    """performance.labeled_predictions (Arrow codes) against the plain pandas merge it replaced:
    the same (event, version, arm) rows, live preferred to batch, unlabeled events left out."""
    from lifecycle import lake, performance

    cfg, uc = settings.load(), contract.current()
    log = prediction_writer.PredictionLog(cfg)
    live = _chunk(6)
    log.append(live)
    log.append({k: v[:2] for k, v in live.items()})  # a retried flush: the same requests again
    log.flush()
    batch = _chunk(6, source="batch", days=DAYS[:1])
    batch["transaction_id"] = live["transaction_id"][:3] + batch["transaction_id"][3:]  # 3 events both ways
    batch[uc.score] = [0.9] * 6
    prediction_writer.write_batch(cfg, DAYS[0], "1", "champion", batch)
    # the labels' raw event ids (a chunk's request ids are its raw event ids): one live, one batch event unlabeled
    labeled = [*live["request_id"][:5], *batch["request_id"][3:5]]
    labels = pd.DataFrame(
        {
            uc.id: labeled,
            uc.label: [i % 2 for i in range(len(labeled))],
            uc.labeled_at: pd.Timestamp("2026-10-02 12:00", tz="UTC"),
        }
    )
    lake.publish(lake.partition("curated", uc.labels, DAYS[1]), {"data.parquet": lake.parquet_bytes(labels)}, {})

    got = performance.labeled_predictions(DAYS[1], cfg)
    preds = prediction_reader.read(cfg).rename(columns={uc.score: performance.PROBA})
    hashed = labels.assign(**{uc.id: pseudonym.of(cfg).many(labels[uc.id])})  # the log keeps pseudonyms
    want = preds.merge(hashed.rename(columns={uc.label: performance.LABEL}), on=uc.id)
    want = want.sort_values("source", key=lambda s: s != "live", kind="stable")
    want = want.drop_duplicates([uc.id, "model_version", "arm"], ignore_index=True)
    columns = [uc.id, performance.PROBA, "model_version", "arm", "source", performance.LABEL]
    order = [uc.id, "arm"]
    pd.testing.assert_frame_equal(
        got[columns].astype(object).sort_values(order, ignore_index=True),
        want[columns].astype(object).sort_values(order, ignore_index=True),
    )
    assert len(got) == 7 and got.loc[got[uc.id].isin(live["transaction_id"][:3]), "source"].eq("live").all()


@hypothesis.settings(deadline=None)  # no timing: CI is shared
@hypothesis.given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["a", "b", None, "ab"]), st.booleans()),
        max_size=60,
    )
)
def test_first_rows_is_a_drop_duplicates_that_keeps_a_preferred_row(rows):
    """``first_rows`` against pandas: per distinct (code, string) the first preferred row, else the first row."""
    import pyarrow as pa

    codes = np.array([r[0] for r in rows], np.int64)
    strings = pa.array([r[1] for r in rows], pa.string())
    prefer = np.array([r[2] for r in rows], bool)
    got = columnar.first_rows([codes, strings], prefer=prefer)
    frame = pd.DataFrame({"code": codes, "text": [r[1] for r in rows], "later": ~prefer})
    frame["text"] = frame["text"].fillna("\0null")
    expected = frame.sort_values(["later"], kind="stable").drop_duplicates(["code", "text"]).index
    assert got.tolist() == sorted(expected)
    assert columnar.first_rows([codes, strings]).tolist() == sorted(frame.drop_duplicates(["code", "text"]).index)
