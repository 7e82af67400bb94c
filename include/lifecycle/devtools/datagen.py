"""Land the use case's generated data in the landing zone, one file per feed and day.

The use case's generator (``UseCase.generator``) draws a day's events and their labels for a
scenario; labels are a late feed, so a day's labels file holds the labels that became known that
day, for events of that day and of the ``LABEL_MAX_DAYS`` before it. The runner records which
scenario and seed it landed each day with, so later days' labels follow the pattern their events
were drawn with. The same (scenario, day, seed) always gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from lifecycle import contract
from lifecycle.platform import env


class ScenarioError(ValueError):
    """An unknown scenario name."""


def generate_day(day: dt.date, scenario: str = "normal", seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The configured use case's events and (later-arriving) labels for one day."""
    gen = contract.current().generate()
    if scenario not in gen.SCENARIOS:
        raise ScenarioError(f"scenario {scenario!r} is not one of {', '.join(gen.SCENARIOS)}")
    return gen.generate_day(day, scenario, seed)


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with ISO-8601 UTC timestamps: the landing-zone file format."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.to_csv(index=False).encode()


def labels_known_on(day: dt.date, landed: dict[dt.date, tuple[str, int]]) -> pd.DataFrame:
    """The labels that became known on ``day``, for the events of the ``landed`` days
    (day -> (scenario, seed)). An ``UNLABELED`` scenario's rows are never labeled."""
    uc = contract.current()
    gen = uc.generate()
    frames = []
    for back in range(gen.LABEL_MAX_DAYS):
        source = day - dt.timedelta(days=back)
        if source in landed and landed[source][0] not in gen.UNLABELED:
            _, labels = generate_day(source, *landed[source])
            frames.append(labels[labels[uc.labeled_at].dt.date == day])
    if not frames:
        return pd.DataFrame(
            {
                uc.id: pd.Series(dtype=str),
                uc.label: pd.Series(dtype=int),
                uc.labeled_at: pd.Series(dtype="datetime64[ns, UTC]"),
            }
        )
    return pd.concat(frames[::-1], ignore_index=True).sort_values([uc.labeled_at, uc.id], ignore_index=True)


def _record(day: dt.date):
    """Where the runner notes the scenario and seed it landed a day with."""
    from lifecycle import lake

    return lake.zone("landing") / "_generator" / f"{day.isoformat()}.json"


def landed_days(day: dt.date) -> dict[dt.date, tuple[str, int]]:
    """What was landed on the days whose labels can still arrive on ``day``."""
    out = {}
    for back in range(contract.current().generate().LABEL_MAX_DAYS):
        source = day - dt.timedelta(days=back)
        record = _record(source)
        if record.exists():
            got = json.loads(record.read_text())
            out[source] = (got["scenario"], got["seed"])
    return out


def land(day: dt.date, scenario: str = "normal", seed: int = 42) -> list[str]:
    """Write the day's events file and the file of labels that became known that day into the
    lake's landing zone (the labels of earlier days follow the scenarios they were landed with)."""
    from lifecycle import lake

    uc = contract.current()
    events, _ = generate_day(day, scenario, seed)
    record = _record(day)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"scenario": scenario, "seed": seed}))
    labels = labels_known_on(day, landed_days(day))
    written = []
    for dataset, frame in zip(uc.datasets, (events, labels), strict=True):
        path = lake.landing_file(dataset, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_csv_bytes(frame))
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> None:
    import argparse

    gen = contract.current().generate()
    parser = argparse.ArgumentParser(description="Land generated events and labels, one file per feed and day.")
    parser.add_argument("--scenario", default="normal", help=f"one of {', '.join(gen.SCENARIOS)}")
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat, help="first day, YYYY-MM-DD")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    env.apply()  # before land() imports Airflow (lifecycle.lake), which reads AIRFLOW_HOME once
    for i in range(args.days):
        for path in land(args.start + dt.timedelta(days=i), args.scenario, args.seed):
            print(path)


if __name__ == "__main__":
    main()
