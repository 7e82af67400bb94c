"""The BentoML service: champion model + online features from the same Feast feature service.

Requests are validated by pydantic (HTTP 400 on violation); every response names the MLflow
model version that produced it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

import bentoml
import pandas as pd
from pydantic import BaseModel, Field

from lifecycle import settings as _settings
from lifecycle.schema import CHANNELS, COUNTRIES, MERCHANT_CATEGORIES

CFG = _settings.load()


class Transaction(BaseModel):
    transaction_id: str = Field(min_length=1, max_length=64)
    card_id: str = Field(min_length=1, max_length=64)
    merchant_id: str = Field(min_length=1, max_length=64)
    amount: float = Field(gt=0, le=CFG.max_amount)
    merchant_category: Literal[MERCHANT_CATEGORIES]
    country: Literal[COUNTRIES]
    channel: Literal[CHANNELS]
    event_timestamp: datetime


class Prediction(BaseModel):
    transaction_id: str
    fraud_probability: float
    model_name: str
    model_version: str
    feature_service: str
    known_card: bool


@bentoml.service(name=CFG.bento_name, traffic={"timeout": 10}, workers=1)
class FraudService:
    model_ref = bentoml.models.BentoModel(f"{CFG.model_name}:latest")

    def __init__(self) -> None:
        from lifecycle.feature_store import get_store

        self.model = bentoml.mlflow.load_model(self.model_ref)
        self.version = self.model_ref.info.labels["mlflow_version"]
        self.store = get_store()
        self.feature_service = self.store.get_feature_service(CFG.feature_service)

    @bentoml.api(input_spec=Transaction, output_spec=Prediction)
    def predict(self, **request) -> Prediction:
        tx = Transaction(**request)
        online = self.store.get_online_features(
            features=self.feature_service,
            entity_rows=[{"card_id": tx.card_id, "merchant_id": tx.merchant_id, "amount": tx.amount}],
        ).to_df()
        frame = online.assign(**{k: [v] for k, v in tx.model_dump().items() if k not in online})
        frame["amount"] = tx.amount  # request fields are not echoed by Feast
        frame["event_timestamp"] = pd.Timestamp(tx.event_timestamp).tz_convert("UTC") \
            if tx.event_timestamp.tzinfo else pd.Timestamp(tx.event_timestamp, tz="UTC")
        probability = float(self.model.predict(frame)[0])
        return Prediction(transaction_id=tx.transaction_id, fraud_probability=probability,
                          model_name=CFG.model_name, model_version=self.version,
                          feature_service=CFG.feature_service,
                          known_card=bool(pd.notna(online["card_avg_amount_7d"].iloc[0])))
