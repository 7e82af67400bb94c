"""The prediction log's journal: what a writer accepted reaches the lake though its process dies."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from test_prediction_log import _chunk

from lifecycle import prediction_log, prediction_reader, prediction_writer, settings

KILLED = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from test_prediction_log import _chunk
    from lifecycle import prediction_writer
    log = prediction_writer.PredictionLog()
    ids = []
    for n in (3, 4, 5):
        chunk = _chunk(n)
        log.append(chunk)
        ids += chunk["request_id"]
        if n == 4:
            log.flush()  # the first two chunks reach the lake; the last stays in the open segment
    print(" ".join(ids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # right after answering: no close(), no flush
    """
)


def journal() -> list[str]:
    cfg = settings.load()
    return sorted(p.name for p in (cfg.state_dir / "serving" / "journal" / cfg.model_name).iterdir())


@pytest.fixture
def settled(monkeypatch):
    monkeypatch.setattr(prediction_writer, "SETTLE_SECONDS", 0.0)


def test_a_killed_writers_rows_are_replayed_by_the_next_writer(state, settled):
    tests = os.path.dirname(__file__)
    done = subprocess.run([sys.executable, "-c", KILLED, tests], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    answered = done.stdout.split()
    assert len(answered) == 12
    lake_before = set(prediction_reader.read(settings.load())["request_id"])
    assert len(lake_before) == 7  # what its one flush wrote; 5 rows were only in its journal
    survivor = prediction_writer.PredictionLog()
    assert survivor.replay() == 5 and survivor.status()["replayed_rows"] == 5
    logged = prediction_reader.read(settings.load())
    assert set(logged["request_id"]) == set(answered) and len(logged) == 12
    assert journal() == sorted([f"{survivor.writer}.lock", f"{survivor.writer}.000000.open"])  # the dead one's are gone
    assert survivor.replay() == 0  # once
    survivor.close()
    assert journal() == []


def test_a_live_writers_journal_is_never_taken(state, settled):
    alive, other = prediction_writer.PredictionLog(), prediction_writer.PredictionLog()
    alive.append(_chunk(4))
    assert other.replay() == 0  # its lock is held (another open file, even in this process)
    assert alive.status()["buffered_rows"] == 4 and alive.flush() == 4
    assert len(prediction_reader.read(settings.load())) == 4


def test_a_record_cut_short_ends_its_segment(state, settled, tmp_path):
    log = prediction_writer.PredictionLog()
    log.append(_chunk(2))
    log.append(_chunk(3))
    segment = next(log.journal.glob(f"{log.writer}.*.open"))
    whole = segment.read_bytes()
    cut = tmp_path / "cut.open"
    cut.write_bytes(whole[:-7])  # the process died inside its last write: that request was never answered
    assert prediction_writer.records(cut)[1] == 2 and prediction_writer.records(segment)[1] == 5


def test_a_failed_lake_write_keeps_the_segment_and_the_retry_writes_it_once(state, settled, monkeypatch):
    log = prediction_writer.PredictionLog()
    chunk = _chunk(6)
    log.append(chunk)
    put = prediction_log.put
    monkeypatch.setattr(prediction_log, "put", lambda *a: (_ for _ in ()).throw(OSError("lake unreachable")))
    assert log.flush() == 0
    status = log.status()
    assert (status["writing_rows"], status["failed_flushes"], status["last_error"]) == (
        6,
        1,
        "OSError: lake unreachable",
    )
    assert [p.suffix for p in log.journal.glob(f"{log.writer}.*")].count(".sealed") == 1
    monkeypatch.setattr(prediction_log, "put", put)
    log.append(_chunk(1))
    assert log.flush() == 7 and log.status()["writing_rows"] == 0
    logged = prediction_reader.read(settings.load())
    assert len(logged) == 7 and set(chunk["request_id"]) <= set(logged["request_id"])


def test_a_closed_writer_refuses_rows_and_leaves_no_journal(state, settled):
    log = prediction_writer.PredictionLog()
    log.append(_chunk(3))
    log.close()
    with pytest.raises(RuntimeError, match="the prediction log is closed"):
        log.append(_chunk(1))  # a row accepted now would never be written
    assert journal() == [] and len(prediction_reader.read(settings.load())) == 3


def test_a_segment_that_cannot_be_written_is_set_aside_and_blocks_nothing(state, settled):
    log = prediction_writer.PredictionLog()
    broken = _chunk(2)
    broken["event_timestamp"] = ["not a time", "either"]  # rows Arrow cannot type as the log's timestamps
    log.append(broken)
    log.flush()
    good = _chunk(4)
    log.append(good)
    assert log.flush() == 4
    status = log.status()
    assert (status["bad_segments"], status["writing_rows"], status["logged_rows"]) == (1, 0, 4)
    assert set(prediction_reader.read(settings.load())["request_id"]) == set(good["request_id"])
    assert [p for p in journal() if p.endswith(".bad")] == [f"{log.writer}.000000.bad"]  # kept for a person to read
