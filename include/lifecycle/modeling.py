"""What a model is here: one set of inputs, one preprocessing, one MLflow pyfunc.

Every candidate (XGBoost, PyTorch MLP, scikit-learn logistic) is wrapped in ``FraudModel``, whose
``score`` returns fraud probabilities from the model inputs (``model_inputs``: stored features,
request fields and the ratios derived from both), so evaluation, promotion, batch scoring and the
live service treat all flavours alike and compute every input with the same code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from lifecycle.schema import REQUEST_CATEGORICALS, REQUEST_NUMERICS

ENTITY_COLUMNS = ("transaction_id", "card_id", "merchant_id", "event_timestamp")
LABEL = "is_fraud"
# The request's amount against the stored averages (NaN when the entity has no usable snapshot).
DERIVED = ("amount_to_card_avg", "amount_to_merchant_avg", "amount_card_zscore")


def _floats(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    if hasattr(values, "to_numpy"):  # pandas: nullable integer columns hold pd.NA
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)  # Feast's to_dict(): None becomes NaN


def _hours(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        return pd.to_datetime(values, utc=True).dt.hour.to_numpy(dtype=float)
    return np.array([(t.astimezone(dt.UTC) if t.tzinfo else t).hour for t in values], dtype=float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def model_inputs(columns: Mapping, numeric: list[str]) -> dict[str, np.ndarray]:
    """The columns a model reads, as arrays: from a training frame, a batch or one request (a
    mapping of column -> values, e.g. Feast's ``to_dict()`` plus the request's fields)."""
    n = len(columns["amount"])
    raw = {
        c: _floats(columns.get(c) if c in columns else None, n)
        for c in ("amount", "card_avg_amount_7d", "card_std_amount_7d", "merchant_avg_amount_7d")
    }
    derived = {
        "hour": _hours(columns["event_timestamp"]),
        "amount_to_card_avg": _ratio(raw["amount"], raw["card_avg_amount_7d"]),
        "amount_to_merchant_avg": _ratio(raw["amount"], raw["merchant_avg_amount_7d"]),
        "amount_card_zscore": _ratio(raw["amount"] - raw["card_avg_amount_7d"], raw["card_std_amount_7d"]),
    }
    out = {
        c: derived[c] if c in derived else raw[c] if c in raw else _floats(columns[c] if c in columns else None, n)
        for c in numeric
    }
    for col in REQUEST_CATEGORICALS:
        out[col] = np.asarray(columns[col], dtype=object).astype(str)
    return out


def model_frame(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """``model_inputs`` as a DataFrame: what the scikit-learn preprocessing is fitted on."""
    return pd.DataFrame(model_inputs(frame, numeric), index=frame.index)


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Stored feature columns returned by Feast, plus the request's numerics and derived ratios."""
    skip = set(ENTITY_COLUMNS) | set(REQUEST_CATEGORICALS) | {LABEL, "labeled_at", *REQUEST_NUMERICS, *DERIVED}
    return [*REQUEST_NUMERICS, *DERIVED, *sorted(c for c in frame.columns if c not in skip)]


def preprocessor(numeric: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(REQUEST_CATEGORICALS)),
        ]
    )


class FittedPreprocessor:
    """The fitted ``preprocessor`` as arrays, applied with numpy.

    scikit-learn's ``ColumnTransformer.transform`` costs 3.4 ms on one row (input validation and
    DataFrame handling per call), more than the rest of a served request; this computes the same
    matrix (impute median, missing indicators, standardise, one-hot with unknown categories as
    zeros) in microseconds. tests/unit/test_modeling.py asserts equality with scikit-learn."""

    def __init__(self, prep, numeric: list[str]):
        imputer, scaler = (prep.named_transformers_["num"].named_steps[k] for k in ("simpleimputer", "standardscaler"))
        self.numeric = list(numeric)
        self.median = imputer.statistics_
        self.keep = ~np.isnan(imputer.statistics_)  # scikit-learn drops columns that were empty in fit
        self.indicator = imputer.indicator_.features_ if imputer.indicator_ is not None else np.array([], int)
        self.mean, self.scale = scaler.mean_, scaler.scale_
        self.categories = [
            (col, np.asarray(cats, dtype=object).astype(str))
            for col, cats in zip(REQUEST_CATEGORICALS, prep.named_transformers_["cat"].categories_, strict=True)
        ]

    def transform(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        X = np.column_stack([inputs[c] for c in self.numeric])
        missing = np.isnan(X)
        filled = np.where(missing, self.median, X)[:, self.keep]
        numeric = (np.hstack([filled, missing[:, self.indicator]]) - self.mean) / self.scale
        onehot = [(inputs[col][:, None] == cats[None, :]) for col, cats in self.categories]
        return np.hstack([numeric, *onehot]).astype(float)


class TorchMLP:
    """A small PyTorch MLP with the scikit-learn fit/predict_proba surface.

    ``fit`` is deterministic for a seed on CPU: the generator seeds the weights and the batch order,
    and the fit runs on ``threads`` intra-op threads whatever the machine's default (CPU gradients
    summed over 8 threads differ from 1 or 2 in the last bits, and the model trained on them too;
    tests/unit/test_reproducibility.py)."""

    def __init__(
        self,
        hidden: int = 64,
        epochs: int = 12,
        lr: float = 1e-3,
        seed: int = 42,
        device: str = "cpu",
        threads: int = 2,
    ):
        self.hidden, self.epochs, self.lr, self.seed, self.device = hidden, epochs, lr, seed, device
        self.threads = threads
        self.net = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> TorchMLP:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._fit(torch, X, y)
        finally:
            torch.set_num_threads(before)

    def _fit(self, torch, X: np.ndarray, y: np.ndarray) -> TorchMLP:
        torch.manual_seed(self.seed)
        net = torch.nn.Sequential(
            torch.nn.Linear(X.shape[1], self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, 1),
        ).to(self.device)
        xt = torch.tensor(X, dtype=torch.float32, device=self.device)
        yt = torch.tensor(y, dtype=torch.float32, device=self.device).unsqueeze(1)
        pos_weight = torch.tensor([(len(y) - y.sum()) / max(y.sum(), 1)], device=self.device).sqrt()
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        for _ in range(self.epochs):
            for idx in torch.randperm(len(xt), generator=gen).split(512):
                opt.zero_grad()
                loss_fn(net(xt[idx.to(self.device)]), yt[idx.to(self.device)]).backward()
                opt.step()
        self.net = net.to("cpu").eval()  # served on CPU
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            p = torch.sigmoid(self.net(torch.tensor(X, dtype=torch.float32))).numpy().ravel()
        return np.column_stack([1 - p, p])


class FraudModel(PythonModel):
    """MLflow pyfunc: model inputs (or a frame they derive from) in, fraud probability out."""

    def __init__(self, prep, estimator, numeric: list[str], flavour: str):
        self.prep, self.estimator, self.numeric, self.flavour = prep, estimator, numeric, flavour

    @property
    def fitted(self) -> FittedPreprocessor:
        if getattr(self, "_fitted", None) is None:  # built on first use: pickles made before it still load
            self._fitted = FittedPreprocessor(self.prep, self.numeric)
        return self._fitted

    def score(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        X = self.fitted.transform(inputs)
        if self.flavour == "xgboost":  # no DMatrix per call: 0.22 ms a row single-threaded, 0.32 ms otherwise
            return self.estimator.get_booster().inplace_predict(X, validate_features=False)  # unnamed arrays
        return self.estimator.predict_proba(X)[:, 1]

    def single_threaded(self) -> FraudModel:
        """For a serving process (one per core): a thread pool costs more than it saves on small
        inputs (XGBoost on one row: 0.65 ms with 2 threads, 0.22 ms with 1)."""
        if self.flavour == "xgboost":
            self.estimator.set_params(n_jobs=1)
        elif self.flavour == "pytorch_mlp":
            import torch

            torch.set_num_threads(1)
        return self

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.score(model_inputs(frame, self.numeric))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predict_proba(model_input)
