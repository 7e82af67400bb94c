"""Batch scoring's speed, side by side with its goal (>= 100,000 rows/s in-process).

    .local/venv/bin/python bench/scoring.py [--rows 1000000] [--reuse]
    .local/venv/bin/python bench/scoring.py --rows 20000     # a quick run (make bench-smoke)

Builds a small world of its own under .local/bench/scoring (six featurized days, one released
XGBoost champion; --reuse keeps one built before). Then it measures:
  score_frame  the score DAG's in-process work on --rows rows with their features joined (one
               curated day's point-in-time rows, repeated): model inputs, one model call, log columns
  write        the same rows written as one prediction-log file (Parquet)
  score_days   one whole day as the score DAG runs it: Feast point-in-time join, load and digest
               check of the champion, scoring, write
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".local" / "bench" / "scoring"
os.environ["LIFECYCLE_STATE_DIR"] = str(STATE)

from lifecycle.platform import env  # noqa: E402  (after the state folder is chosen)

env.apply()

import pandas as pd  # noqa: E402
import world  # noqa: E402

from lifecycle import contract, live, prediction_writer, scoring, settings, tracking  # noqa: E402
from lifecycle.aliases import CHAMPION  # noqa: E402

UC = contract.current()

DAYS = 6
GOAL_ROWS_PER_S = 100_000


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the world a previous run built")
    args = parser.parse_args()
    if not (args.reuse and (STATE / "lake").exists()):
        world.build(STATE, DAYS)
    cfg = settings.load()
    day = world.FIRST + dt.timedelta(days=DAYS - 1)
    version = str(tracking.version_by_alias(CHAMPION).version)
    model = live.load_version(cfg, version).model
    one_day = scoring.day_features(day)
    frame = pd.concat([one_day] * (args.rows // len(one_day) + 1), ignore_index=True).head(args.rows)
    scoring.score_frame(UC, frame.head(1000), model, version, CHAMPION)  # warm-up
    columns, score_s = timed(scoring.score_frame, UC, frame, model, version, CHAMPION)
    _, write_s = timed(prediction_writer.write_batch, cfg, day + dt.timedelta(days=365), version, "bench", columns)
    result, day_s = timed(scoring.score_days, [day])
    table = [
        ("score_frame (inputs + model + log columns)", len(frame), score_s, f">= {GOAL_ROWS_PER_S:,} rows/s"),
        ("write one prediction-log file", len(frame), write_s, "-"),
        ("score + write", len(frame), score_s + write_s, f">= {GOAL_ROWS_PER_S:,} rows/s"),
        (f"score_days [{day}] (Feast join, load, score, write)", result["days"][0]["rows"], day_s, "-"),
    ]
    print(f"{'measurement':<52} {'rows':>10} {'seconds':>8} {'rows/s':>12}  goal")
    for label, rows, seconds, goal in table:
        print(f"{label:<52} {rows:>10,} {seconds:>8.3f} {rows / seconds:>12,.0f}  {goal}")
    print(
        f"\nmodel version {version} ({model.flavour}, single-threaded as served); {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    main()
