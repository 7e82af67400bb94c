"""What a model is here: one set of inputs, one preprocessing, one MLflow pyfunc.

Every candidate (XGBoost, PyTorch MLP, scikit-learn logistic) is wrapped in ``LifecycleModel``,
whose ``score`` returns the positive class's probability from the model inputs (``model_inputs``:
stored features, request fields and what the use case derives from both), so evaluation,
promotion, batch scoring and the live service treat all flavours alike and compute every input
with the same code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from lifecycle.contract import UseCase, floats


def model_inputs(uc: UseCase, columns: Mapping, numeric: list[str], categorical: list[str]) -> dict[str, np.ndarray]:
    """The columns a model reads, as arrays: from a training frame, a batch or one request (a
    mapping of column -> values, e.g. Feast's ``to_dict()`` plus the request's fields). Numbers
    the use case derives (``UseCase.derive``) are computed here, for every caller alike."""
    n = len(columns[uc.time])
    derived = uc.derive(columns, n)
    out = {c: derived[c] if c in derived else floats(columns[c] if c in columns else None, n) for c in numeric}
    for col in categorical:
        out[col] = np.asarray(columns[col], dtype=object).astype(str)
    return out


def model_frame(uc: UseCase, frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """``model_inputs`` as a DataFrame: what the scikit-learn preprocessing is fitted on."""
    return pd.DataFrame(model_inputs(uc, frame, numeric, list(uc.categoricals)), index=frame.index)


def numeric_columns(uc: UseCase, columns) -> list[str]:
    """The request's numerics, the derived numbers, and the stored feature columns Feast returned
    (among ``columns``, a training set's column names)."""
    skip = {*uc.event_columns, uc.label, uc.labeled_at, *uc.numerics, *uc.feature_derived}
    return [*uc.numerics, *uc.feature_derived, *sorted(c for c in columns if c not in skip)]


def preprocessor(numeric: list[str], categorical: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical)),
        ]
    )


def categorical(prep) -> list[str]:
    """The category columns a ``preprocessor`` was built with (its "cat" transformer's)."""
    return list(dict((name, cols) for name, _, cols in prep.transformers)["cat"])


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
            for col, cats in zip(categorical(prep), prep.named_transformers_["cat"].categories_, strict=True)
        ]
        self.inputs = [*self.numeric, *(col for col, _ in self.categories)]
        owners = [
            *np.asarray(self.numeric)[self.keep],
            *np.asarray(self.numeric, dtype=object)[self.indicator],
            *(col for col, cats in self.categories for _ in cats),
        ]
        # column j of ``transform``'s matrix belongs to input i where owner[j, i] is 1
        self.owner = (np.asarray(owners)[:, None] == np.asarray(self.inputs)[None, :]).astype(float)

    def transform(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model matrix, each part written in place into one array: stacking the parts and
        converting them copied it twice more (3.8 of a 2,000,000-row batch's ~17 s, bench/scale.py)."""
        X = np.column_stack([inputs[c] for c in self.numeric])
        missing = np.isnan(X)
        filled = np.where(missing, self.median, X)[:, self.keep]
        numeric = filled.shape[1] + len(self.indicator)
        out = np.empty((len(X), numeric + sum(len(cats) for _, cats in self.categories)))
        out[:, : filled.shape[1]] = filled
        out[:, filled.shape[1] : numeric] = missing[:, self.indicator]
        out[:, :numeric] -= self.mean
        out[:, :numeric] /= self.scale
        at = numeric
        for col, cats in self.categories:  # one-hot: unknown categories all zeros
            out[:, at : at + len(cats)] = inputs[col][:, None] == cats[None, :]
            at += len(cats)
        return out

    def baseline(self, name: str) -> np.ndarray:
        """What an input is set to when its contribution is taken away: a number its training
        median, a category one never seen (no one-hot column set)."""
        if name in self.numeric:
            return np.array([self.median[self.numeric.index(name)]])
        return np.array([""], dtype=object)


class TorchMLP:
    """A small PyTorch MLP with the scikit-learn fit/predict_proba surface.

    ``fit`` is deterministic for a seed on CPU: the generator seeds the weights and the batch order,
    and the fit runs on ``threads`` intra-op threads whatever the machine's default (on some CPUs,
    gradients summed over 8 threads differ from 1 or 2 in the last bits, and the model trained on them too;
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
        loss_fn = torch.nn.BCEWithLogitsLoss()  # unweighted: the scores are probabilities (training.estimator)
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


class LifecycleModel(PythonModel):
    """MLflow pyfunc: model inputs (or a frame they derive from) in, the positive class's probability out."""

    def __init__(self, prep, estimator, numeric: list[str], flavour: str, uc: UseCase):
        self.prep, self.estimator, self.numeric, self.flavour = prep, estimator, numeric, flavour
        # what ``inputs`` needs of the use case, pickled with the model (its ``derive`` by reference
        # to the use case's module, which the logged model carries as code): a process loading it
        # needs no LIFECYCLE_* setting to compute its inputs
        self.time, self.derive = uc.time, uc.derive

    @property
    def categorical(self) -> list[str]:
        return categorical(self.prep)

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

    def single_threaded(self) -> LifecycleModel:
        """For a serving process (one per core): a thread pool costs more than it saves on small
        inputs (XGBoost on one row: 0.65 ms with 2 threads, 0.22 ms with 1)."""
        if self.flavour == "xgboost":
            self.estimator.set_params(n_jobs=1)
        elif self.flavour == "pytorch_mlp":
            import torch

            torch.set_num_threads(1)
        return self

    def all_cores(self) -> LifecycleModel:
        """For batch scoring (one task, chunks of hundreds of thousands of rows): the model's threads
        on every core, where ``single_threaded`` (as versions are loaded for serving) leaves one.
        XGBoost on 500,000 rows: ~1.1 s with 1 thread, ~0.7 s with 2 (bench/scale.py)."""
        if self.flavour == "xgboost":
            self.estimator.set_params(n_jobs=os.cpu_count() or 1)
        elif self.flavour == "pytorch_mlp":
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
        return self

    def inputs(self, columns: Mapping) -> dict[str, np.ndarray]:
        """``model_inputs`` of ``columns`` with the use case this model was trained for."""
        spec = self if hasattr(self, "derive") else _configured()  # pickled before the model kept it
        return model_inputs(spec, columns, self.numeric, self.categorical)

    def contributions(self, inputs: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
        """Each input's contribution to each row's score, in log-odds: (input names, rows x inputs).

        XGBoost's own SHAP values (``pred_contribs``), summed over the matrix columns an input
        became (its standardised value and missing indicator, or its one-hot columns). Other
        flavours: the log-odds change when the input alone is set to its ``baseline``, all rows and
        inputs scored in one call."""
        fitted = self.fitted
        if self.flavour == "xgboost":
            import xgboost

            shap = self.estimator.get_booster().predict(xgboost.DMatrix(fitted.transform(inputs)), pred_contribs=True)
            return fitted.inputs, shap[:, :-1] @ fitted.owner  # the last column is the bias
        n = len(inputs[fitted.inputs[0]])
        batch = {
            name: np.concatenate(
                [values, *(np.resize(fitted.baseline(name), n) if other == name else values for other in fitted.inputs)]
            )
            for name, values in inputs.items()
        }
        logit = _logit(self.score(batch)).reshape(len(fitted.inputs) + 1, n)
        return fitted.inputs, (logit[0] - logit[1:]).T

    @property
    def explained_by(self) -> str:
        """How ``contributions`` are computed, as an answer's reasons name it."""
        if self.flavour == "xgboost":
            return "tree SHAP (XGBoost), log-odds"
        return "baseline substitution (each input at its training median or an unseen category), log-odds"

    def reasons(self, inputs: Mapping[str, np.ndarray], top: int) -> list[list[dict]]:
        """Per row, the ``top`` inputs by the size of their ``contributions``: each with the value the
        model read (None when missing) and its contribution in log-odds, largest first."""
        names, contrib = self.contributions(inputs)
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top]
        return [
            [
                {"input": names[i], "value": _plain(inputs[names[i]][r]), "contribution": float(contrib[r, i])}
                for i in row
            ]
            for r, row in enumerate(order)
        ]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.score(self.inputs(frame))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predict_proba(model_input)


def _configured():
    """The configured use case: what models pickled before they kept their own ``derive`` read."""
    from lifecycle import contract

    return contract.current()


def _plain(value):
    """A model input's value as JSON takes it: a number (None when missing) or a category."""
    if isinstance(value, str):
        return value
    value = float(value)
    return None if np.isnan(value) else value


def _logit(p: np.ndarray) -> np.ndarray:
    """Log-odds, the scores kept 1e-12 from 0 and 1 (a saturated score's would be infinite)."""
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(q) - np.log1p(-q)


FraudModel = LifecycleModel  # the name models registered before the use-case contract were pickled with
