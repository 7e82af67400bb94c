"""The thresholds a decision uses, as they stand when its task runs.

Each threshold of ``settings.THRESHOLDS`` has three layers, the last that has it wins: the
deployment's setting (``LIFECYCLE_<NAME>``), the use case's own value (``UseCase.thresholds``), and
the Airflow Variable ``lifecycle_<use case>_<name>`` (Admin → Variables; named per use case, as a
metadata DB may serve more than one), which a task reads when it runs:
a value changed in the UI takes effect in the next run, with no restart. Set-up creates the
Variables with the values in force then, so the UI lists them all. Every decision records what it
used: ``Thresholds.record()``, each value with where it came from.

Floors are relative to the data: ``floor`` scales the level a ranking by chance reaches on the
same labels, so the same default suits a base rate of 0.2% or 20%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from lifecycle import contract
from lifecycle import settings as _settings

VARIABLE_PREFIX = "lifecycle_"


class ThresholdError(ValueError):
    """A threshold's value (a use case's or a Variable's) that is unknown or out of its bounds."""


@dataclass(frozen=True)
class Thresholds:
    values: dict[str, float]
    sources: dict[str, str]

    def apply(self, cfg: _settings.Settings) -> _settings.Settings:
        """``cfg`` with these thresholds in force."""
        return replace(cfg, **self.values)

    def record(self) -> dict[str, dict]:
        """What a decision keeps: each threshold's value and where it came from."""
        return {name: {"value": self.values[name], "source": self.sources[name]} for name in self.values}


def variable(uc: contract.UseCase, name: str) -> str:
    """The Airflow Variable that tunes threshold ``name`` of use case ``uc``."""
    return f"{VARIABLE_PREFIX}{uc.name}_{name}"


def _checked(name: str, raw, where: str) -> float:
    spec = _settings.THRESHOLDS.get(name)
    if spec is None:
        raise ThresholdError(f"{where}: {name!r} is not a threshold (known: {', '.join(_settings.THRESHOLDS)})")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ThresholdError(f"{where}={raw!r}: must be a number between {spec.lo} and {spec.hi}") from None
    if not (math.isfinite(value) and spec.lo <= value <= spec.hi):
        raise ThresholdError(f"{where}={raw!r}: must be between {spec.lo} and {spec.hi}")
    return value


def in_force(cfg: _settings.Settings | None = None, *, variables: dict | None = None) -> Thresholds:
    """The thresholds from settings, the use case, then ``variables`` ({Variable key: value}, as
    ``from_airflow`` reads them; other keys, such as another use case's, are ignored)."""
    cfg = cfg or _settings.load()
    uc = contract.current(cfg)
    values = {name: getattr(cfg, name) for name in _settings.THRESHOLDS}
    sources = {name: f"LIFECYCLE_{t.setting}" for name, t in _settings.THRESHOLDS.items()}
    for name, raw in uc.thresholds.items():
        values[name] = _checked(name, raw, f"use case {uc.name!r} threshold {name}")
        sources[name] = f"use case {uc.name}"
    keys = {variable(uc, name): name for name in _settings.THRESHOLDS}
    for key, raw in (variables or {}).items():
        if key in keys and raw is not None:
            values[keys[key]] = _checked(keys[key], raw, f"Airflow Variable {key}")
            sources[keys[key]] = f"Variable {key}"
    return Thresholds(values, sources)


def from_airflow(cfg: _settings.Settings | None = None) -> Thresholds:
    """``in_force`` with the Airflow Variables; only inside a running Airflow task."""
    from airflow.sdk import Variable

    uc = contract.current(cfg)
    keys = [variable(uc, name) for name in _settings.THRESHOLDS]
    return in_force(cfg, variables={key: Variable.get(key, None) for key in keys})


def as_variables(cfg: _settings.Settings | None = None) -> dict[str, dict]:
    """The Variables set-up creates (``airflow variables import`` format, existing ones kept)."""
    current = in_force(cfg)
    uc = contract.current(cfg)
    return {
        variable(uc, name): {
            "value": f"{current.values[name]:g}",
            "description": f"{t.meaning} (from {current.sources[name]}; read when a task runs)",
        }
        for name, t in _settings.THRESHOLDS.items()
    }


def chance(metric: str, positive_rate: float) -> float:
    """What a ranking by chance reaches on labels with this positive rate."""
    return positive_rate if metric == "pr_auc" else 0.5


def floor(metric: str, positive_rate: float, lift: float) -> float:
    """``lift`` times chance, never above halfway from chance to a perfect 1.0 (a positive rate of
    0.6 with a lift of 2 would otherwise ask for more than any model can reach)."""
    base = chance(metric, positive_rate)
    return min(lift * base, (1.0 + base) / 2)
