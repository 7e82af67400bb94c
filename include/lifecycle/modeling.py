"""What a model is here: one frame layout, one preprocessing, one MLflow pyfunc.

Every candidate (XGBoost, PyTorch MLP, scikit-learn logistic) is wrapped in ``FraudModel``, whose
``predict`` returns fraud probabilities from a frame of feature-service columns plus request
fields, so evaluation, promotion and serving treat all flavours alike.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from lifecycle.schema import REQUEST_CATEGORICALS, REQUEST_NUMERICS

ENTITY_COLUMNS = ("transaction_id", "card_id", "merchant_id", "event_timestamp")
LABEL = "is_fraud"


def model_frame(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """The columns a model reads, derived the same way for training and serving."""
    missing = np.full(len(frame), np.nan)
    cols = {"hour": pd.to_datetime(frame["event_timestamp"], utc=True).dt.hour.to_numpy(dtype=float)}
    for col in numeric:
        if col != "hour":  # built as arrays, one DataFrame at the end: this runs per served request
            cols[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float) if col in frame else missing
    for col in REQUEST_CATEGORICALS:
        cols[col] = frame[col].astype(str).to_numpy()
    return pd.DataFrame(cols, index=frame.index)


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Stored/on-demand feature columns returned by Feast, plus the request's numerics."""
    skip = set(ENTITY_COLUMNS) | set(REQUEST_CATEGORICALS) | {LABEL, "labeled_at", *REQUEST_NUMERICS}
    return [*REQUEST_NUMERICS, *sorted(c for c in frame.columns if c not in skip)]


def preprocessor(numeric: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), numeric),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(REQUEST_CATEGORICALS)),
    ])


class TorchMLP:
    """A small PyTorch MLP with the scikit-learn fit/predict_proba surface."""

    def __init__(self, hidden: int = 64, epochs: int = 12, lr: float = 1e-3, seed: int = 42, device: str = "cpu"):
        self.hidden, self.epochs, self.lr, self.seed, self.device = hidden, epochs, lr, seed, device
        self.net = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> TorchMLP:
        import torch

        torch.manual_seed(self.seed)
        net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], self.hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(self.hidden, self.hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(self.hidden, 1)).to(self.device)
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
    """MLflow pyfunc: feature-service frame in, fraud probability out."""

    def __init__(self, prep, estimator, numeric: list[str], flavour: str):
        self.prep, self.estimator, self.numeric, self.flavour = prep, estimator, numeric, flavour

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        X = self.prep.transform(model_frame(frame, self.numeric))
        return self.estimator.predict_proba(X)[:, 1]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.predict_proba(model_input)
