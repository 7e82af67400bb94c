"""A small world for benches: landed, validated, featurized normal days and one released champion.

Import after setting LIFECYCLE_STATE_DIR: the lifecycle modules read it on every call.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

FIRST = dt.date(2026, 10, 1)


def build(state: Path, days: int = 6, flavour: str = "xgboost") -> list[dt.date]:
    """Replace ``state`` with ``days`` featurized days (+1 curated day the features do not cover) and
    a released ``flavour`` champion; returns the curated days."""
    import pandas as pd

    from lifecycle import features, ingest, promotion, training, validation
    from lifecycle.devtools import datagen

    shutil.rmtree(state, ignore_errors=True)
    every = [FIRST + dt.timedelta(days=i) for i in range(days + 1)]
    for day in every:
        datagen.land(day, "normal")
        ingest.ingest_day(day)
        validation.validate_day(day)
    features.materialize(features.build_tables(every[:days]))  # the last day is served from the day before's snapshot
    info = training.build_training_set("bench", pd.Timestamp.now(tz="UTC"))
    parent = training.start_parent_run("bench", info, "bench")
    result = training.train_candidate(flavour, info, parent, seed=7)
    promotion.release(str(training.register_best([result], info, "bench", "bench")["version"]), force=True)
    return every
