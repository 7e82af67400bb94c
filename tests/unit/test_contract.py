"""The use-case contract: what it refuses, and what the generic stages derive from it."""

import dataclasses

import pytest

from lifecycle import contract, packaging, settings

UC = contract.current()


def test_the_default_use_case_is_card_fraud_and_names_its_parts():
    assert settings.load().use_case == "usecases.fraud"
    assert (UC.name, UC.events, UC.id, UC.label, UC.score) == (
        "fraud",
        "transactions",
        "transaction_id",
        "is_fraud",
        "fraud_probability",
    )
    assert UC.numerics == ("amount", "hour") and UC.categoricals == ("merchant_category", "country", "channel")
    assert UC.keys == ("transaction_id", "card_id", "merchant_id", "event_timestamp")
    assert (UC.feature_repo / "definitions.py").is_file()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "nope"}, "id 'nope' is not a column"),
        ({"entities": ("card_id", "shop")}, r"entities \['shop'\] are not columns"),
        ({"route_by": "merchant_category"}, "route_by 'merchant_category' is not an entity"),
        ({"example": {"transaction_id": "x"}}, "the example request must have exactly the columns"),
        ({"columns": (*UC.columns[:-1], contract.Column("event_timestamp", "date"))}, "has kind 'date'"),
        ({"columns": (*UC.columns, contract.Column("tier", contract.CATEGORY))}, "category column 'tier' lists no"),
    ],
)
def test_a_use_case_that_breaks_the_contract_is_refused_naming_the_rule(change, message):
    with pytest.raises(contract.ContractError, match=message):
        dataclasses.replace(UC, **change)


def test_a_module_that_is_not_a_use_case_is_named(monkeypatch):
    monkeypatch.setenv("LIFECYCLE_USE_CASE", "no_such_use_case")
    with pytest.raises(contract.ContractError, match="LIFECYCLE_USE_CASE='no_such_use_case': cannot import it"):
        contract.current()
    monkeypatch.setenv("LIFECYCLE_USE_CASE", "json")
    with pytest.raises(contract.ContractError, match="defines no use_case"):
        contract.current()


def test_the_request_model_and_its_openapi_schema_derive_from_the_columns(monkeypatch):
    from lifecycle import serving

    schema = serving.request_model(UC).model_json_schema()
    assert schema["title"] == "Transaction" and set(schema["required"]) == set(UC.event_columns)
    props = schema["properties"]
    assert props["merchant_category"]["enum"] == list(UC.column("merchant_category").values)
    assert (props["amount"]["minimum"], props["amount"]["maximum"]) == (0.01, settings.load().max_amount)
    assert props["card_id"]["maxLength"] == 64 and props["event_timestamp"]["format"] == "date-time"
    answer = serving.response_model(UC).model_json_schema()["properties"]
    assert {"transaction_id", "fraud_probability", "model_version", "arm"} <= set(answer)
    assert UC.known_flags == {"known_card": "card_avg_amount_7d", "known_merchant": "merchant_avg_amount_7d"}
    assert {"known_card", "known_merchant"} <= set(answer)  # one flag per entity
    assert serving.batch_model(serving.request_model(UC), 5).__name__ == "TransactionBatch"
    monkeypatch.setenv("LIFECYCLE_MAX_AMOUNT", "10")  # a setting the contract reads reaches the model
    assert serving.request_model(contract.current()).model_json_schema()["properties"]["amount"]["maximum"] == 10


def test_golden_requests_are_the_example_an_unknown_entity_and_one_breach_of_each_rule():
    golden = packaging.golden(UC)
    assert [(expected, with_key) for _, with_key, expected in golden] == [
        (200, True),
        (200, True),
        (400, True),
        (400, True),
        (400, True),
        (401, False),
    ]
    bodies = [body for body, _, _ in golden]
    assert bodies[0] == UC.example and bodies[1]["card_id"] == "never-seen"
    assert bodies[2]["amount"] < 0.01 and bodies[3]["merchant_category"] not in UC.column("merchant_category").values
    assert "card_id" not in bodies[4] and len({b["transaction_id"] for b in bodies}) == len(bodies)


def test_known_by_names_entities_besides_the_routed_one():
    import dataclasses

    with pytest.raises(contract.ContractError, match=r"known_by names \['amount'\], which are not entities"):
        dataclasses.replace(UC, known_by={"amount": ("known_amount", "x")})
    with pytest.raises(contract.ContractError, match=r"known_by names \['card_id'\]"):
        dataclasses.replace(UC, known_by={"card_id": ("known_card_2", "card_avg_amount_7d")})


def test_hours_are_read_in_the_use_cases_time_zone_from_frames_and_requests_alike():
    import datetime as dt

    import pandas as pd

    stamps = [
        "2013-01-15T14:30:00Z",
        "2013-07-15T14:30:00Z",
        "2013-03-10T07:30:00Z",
    ]  # EST, EDT, the spring-forward day
    frame = pd.Series(pd.to_datetime(stamps, utc=True))
    request = [dt.datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps]
    assert contract.hours(frame).tolist() == [14.0, 14.0, 7.0]
    assert contract.hours(frame, "America/New_York").tolist() == [9.0, 10.0, 3.0]
    assert contract.hours(request, "America/New_York").tolist() == [9.0, 10.0, 3.0]
    assert contract.hours([dt.datetime(2013, 1, 15, 14, 30)], "America/New_York").tolist() == [9.0]  # naive is UTC
