"""The live BentoML service: the registry's champion (and canary) with online features from the
same Feast feature service, every answer in the prediction log.

Its request and response models (and so its OpenAPI document) derive from the use case's contract
(``lifecycle.contract``): a field per column, typed, with its range or allowed values.

The models it serves follow the registry's aliases without a restart (``lifecycle.live``).
Every response names the model version and the arm. Requests need ``Authorization: Bearer
<key>`` (``Settings.serving_api_key``); /healthz, /livez, /readyz, /metrics and the OpenAPI
document are open. Bodies over LIFECYCLE_SERVING_MAX_BODY_BYTES answer 413, a POST that is
not JSON answers 415, a contract breach 400, no champion yet (or a champion that failed to score
with no previous champion to answer instead) 503. ``/status`` and ``/metrics`` give each arm's
health (``lifecycle.health``): /status this worker's recent rows, /metrics every worker's counts.
Imports nothing of Airflow.
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import logging
import re
from datetime import datetime
from typing import Annotated, Literal

import bentoml
from bentoml._internal.server.http import traffic
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, create_model
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from lifecycle import contract
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHAMPION, FALLBACK

CFG = _settings.load()
USE_CASE = contract.current(CFG)
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/docs"})


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


def _rfc3339(value):
    """A timestamp is an RFC 3339 string with its zone (pydantic alone also takes numbers and "0")."""
    if isinstance(value, datetime):  # a Python caller's own datetime: AwareDatetime still checks its zone
        return value
    if not isinstance(value, str) or not RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with a zone, e.g. 2026-10-20T12:00:00Z")
    return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))


def _field(column: contract.Column):
    """A request field for a contract column: its type, with its length, range or allowed values."""
    if column.kind == contract.KEY:
        return (str, Field(min_length=1, max_length=column.max_length))
    if column.kind == contract.NUMBER:
        return (float, Field(ge=column.min, le=column.max))
    if column.kind == contract.CATEGORY:
        return (Literal[column.values], ...)
    return (Annotated[AwareDatetime, BeforeValidator(_rfc3339)], ...)


class _Input(bentoml.IODescriptor):
    """BentoML's own input model, strict (so "12.5" is not a number): a model of this kind keeps its
    name in a 400 ("1 validation error for Transaction"), where any other is wrapped and renamed."""

    model_config = ConfigDict(strict=True)


EXPLAIN = "explain"  # the request field that asks for the answer's reasons


def request_model(uc: contract.UseCase) -> type[BaseModel]:
    """One event as the service takes it, named as the contract names it, and whether to explain it."""
    return create_model(
        uc.request_name,
        __base__=_Input,
        **{c.name: _field(c) for c in uc.columns},
        **{
            EXPLAIN: (
                bool,
                Field(False, description="answer with the inputs that drove the score (reasons): slower"),
            )
        },
    )


class Reason(BaseModel):
    """One input behind a score: the value the model read and its contribution (log-odds)."""

    input: str
    value: float | str | None
    contribution: float


def batch_model(request: type[BaseModel], max_rows: int) -> type[BaseModel]:
    """Many events in one request (``events``), named after the request model."""
    return create_model(
        f"{request.__name__}Batch",
        __base__=_Input,
        events=(Annotated[list[request], Field(min_length=1, max_length=max_rows)], ...),
    )


def response_model(uc: contract.UseCase) -> type[BaseModel]:
    """An answer: the event's id, the score, and which model (version, arm) gave it."""
    return create_model(
        "Prediction",
        **{
            uc.id: (str, ...),
            "request_id": (str, ...),
            uc.score: (float, ...),
            "model_name": (str, ...),
            "model_version": (str, ...),
            "arm": (Literal[CHAMPION, CANARY, FALLBACK], ...),
            "feature_service": (str, ...),
            **{flag: (bool, ...) for flag in uc.known_flags},
            "reasons": (list[Reason] | None, None),  # null unless the request asked (EXPLAIN)
            "explained_by": (str | None, None),
        },
    )


Request = request_model(USE_CASE)
Batch = batch_model(Request, CFG.serving_max_batch)
Prediction = response_model(USE_CASE)


class Gatekeeper:
    """ASGI middleware in front of every route: API key, body size, content type."""

    def __init__(self, app, api_key: str, max_body_bytes: int):
        self.app, self.key, self.max_body = app, f"Bearer {api_key}".encode(), max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not hmac.compare_digest(headers.get(b"authorization", b""), self.key):
            return await _reject(
                send,
                401,
                "missing or wrong API key: send Authorization: Bearer <key>",
                [(b"www-authenticate", b"Bearer")],
            )
        if scope["method"] == "POST":
            media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if media != b"application/json":
                return await _reject(
                    send,
                    415,
                    f"content type {media.decode(errors='replace') or 'none'!r} "
                    "is not supported: send application/json",
                )
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                return await _reject(
                    send,
                    413,
                    f"body of {length.decode(errors='replace')} bytes exceeds the limit of {self.max_body} bytes",
                )
            if length is None:  # chunked: read it here, within the limit, then hand it on
                body, more = b"", True
                while more:
                    message = await receive()
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > self.max_body:
                        return await _reject(send, 413, f"body exceeds the limit of {self.max_body} bytes")
                sent = False

                async def replay():
                    nonlocal sent
                    if sent:
                        return await receive()
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}

                return await self.app(scope, replay, send)
        return await self.app(scope, receive, send)


async def _reject(send, status: int, error: str, extra_headers=()) -> None:
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _timeout_middleware(self, scope, receive, send):
    """BentoML 1.4's ``TimeoutMiddleware.__call__`` with its timer cancelled when the request ends.

    The original leaves ``loop.call_later(timeout, ...)`` pending, so every request's context (its
    trace span, request, response) stays alive for the traffic timeout: ~11,500 live spans under
    load, full garbage collections of 40-190 ms, p99 8-100 ms on a trivial endpoint; with the timer
    cancelled p99 is 1.6 ms (tests/unit/test_serving.py asserts no timer outlives its request)."""
    if scope["type"] not in ("http", "websocket"):
        return await self.app(scope, receive, send)
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()
    timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

    async def _send(message):
        if not waiter.done():
            waiter.set_result(None)
        await send(message)

    fut = asyncio.ensure_future(self.app(scope, receive, _send), loop=loop)
    try:
        await waiter
    except TimeoutError:
        if fut.cancel():
            await JSONResponse(
                {"error": f"Not able to process the request in {self.timeout} seconds"}, status_code=504
            )(scope, receive, send)
    else:
        await fut
    finally:
        timer.cancel()


traffic.TimeoutMiddleware.__call__ = _timeout_middleware


class OneLineClientErrors(logging.Filter):
    """A request the service refuses (a contract breach, a body BentoML cannot read) is the
    client's error: BentoML logs each with its full traceback; this keeps one line naming the path
    and the reason. Server errors keep their traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bentoml.exceptions import BentoMLException
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        client = isinstance(error, ValidationError) or (
            isinstance(error, BentoMLException) and int(error.error_code) < 500
        )
        if client:
            reason = (
                f"{error.error_count()} validation error(s) for {error.title}"
                if isinstance(error, ValidationError)
                else str(error)
            )
            record.msg, record.args = "%s: %s", (record.getMessage(), reason[:300])
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"  # the client's error, not the service's
        return True


logging.getLogger("bentoml._internal.server.http_app").addFilter(OneLineClientErrors())


def _metrics():
    """Prometheus metrics of every scored row (BentoML's multiprocess registry: /metrics adds up
    the workers), fed by ``LiveModel.health``."""
    from bentoml import metrics

    labels = ["arm", "model_version"]
    rows = metrics.Counter("lifecycle_rows", "Rows scored, by arm, version and outcome", [*labels, "outcome"])
    missing = metrics.Counter(
        "lifecycle_missing_features_rows", "Rows served without an entity's stored features", labels
    )
    latency = metrics.Histogram(
        "lifecycle_request_latency_seconds",
        "Time to answer a request (features, every arm, the log), once per request and arm",
        labels,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
    )
    age = metrics.Histogram(
        "lifecycle_feature_age_seconds",
        "Age of the oldest stored snapshot a row was served, at the event's time",
        labels,
        buckets=(600, 3600, 6 * 3600, 86400, 2 * 86400, 4 * 86400, 7 * 86400, 30 * 86400),
    )

    def observe(arm, version, latency_ms, failed, missing_rows, ages) -> None:
        errors = sum(failed)
        if errors:
            rows.labels(arm, version, "error").inc(errors)
        if len(failed) - errors:
            rows.labels(arm, version, "ok").inc(len(failed) - errors)
        if sum(missing_rows):
            missing.labels(arm, version).inc(sum(missing_rows))
        latency.labels(arm, version).observe(latency_ms / 1000)
        for a in ages:
            if a is not None:
                age.labels(arm, version).observe(a)

    return observe


def _columns(events: list[dict]) -> dict[str, list]:
    return {f: [e[f] for e in events] for f in USE_CASE.event_columns}


def _explain(events: list[dict]) -> list[bool]:
    return [bool(e.get(EXPLAIN)) for e in events]


@bentoml.service(name=CFG.bento_name, traffic={"timeout": 10}, workers=CFG.serving_workers)
class ModelService:
    def __init__(self) -> None:
        from lifecycle.live import LiveModel

        self.live = LiveModel(CFG)
        self.live.health.observers.append(_metrics())
        self.live.start()

    def __is_ready__(self) -> bool:
        return self.live.ready

    @bentoml.on_shutdown
    def flush_prediction_log(self) -> None:
        self.live.close()

    def _predict(self, events: list[dict]) -> list[Prediction] | JSONResponse:
        from lifecycle.live import NotReady

        try:
            answers = self.live.predict(_columns(events), _explain(events))
        except NotReady as err:  # BentoML would hide the reason of a 5xx
            return JSONResponse({"error": str(err)}, status_code=503)
        return [Prediction(**a) for a in answers]

    @bentoml.api(input_spec=Request, output_spec=Prediction)
    async def predict(self, **event) -> Prediction:
        """Score one event with the model its entity is routed to."""
        answers = self._predict([event])
        return answers if isinstance(answers, JSONResponse) else answers[0]

    @bentoml.api(input_spec=Batch)
    async def predict_batch(self, events: list[Request]) -> list[Prediction]:
        """Score many events in one request (one feature lookup, one model call per arm)."""
        return self._predict([e.model_dump() for e in events])

    @bentoml.api
    async def status(self) -> dict:
        """What serves, what the registry says, refused versions and why, the prediction log's
        counts, and each arm's health in this worker's recent rows."""
        return self.live.status()


ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
VALIDATION_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "array", "items": {"type": "object"}}},
}


def openapi_document() -> dict:
    """BentoML's document, made true: bodies required, the answers the service really gives
    (400 with a list of details, 401, 413, 415, 503) and the bearer key; no 404/500 it never sends."""
    doc = ModelService.openapi_spec.asdict()
    doc["components"]["schemas"].update(Error=ERROR, ValidationError=VALIDATION_ERROR)
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}

    def ref(name: str, text: str) -> dict:
        return {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }

    for path, item in doc["paths"].items():
        for op in item.values():
            if path in OPEN_PATHS:
                continue
            responses = op["responses"] = {
                str(code): r
                for code, r in op["responses"].items()  # BentoML: int keys
                if str(code) not in ("404", "500")
            }
            op["security"] = [{"bearer": []}]
            responses["401"] = ref("Error", "Missing or wrong API key")
            if "requestBody" in op:
                op["requestBody"]["required"] = True
                responses["400"] = ref("ValidationError", "Invalid JSON, or a field breaks the contract")
                responses["413"] = ref("Error", "Body larger than the configured limit")
                responses["415"] = ref("Error", "Content type is not application/json")
            if path in ("/predict", "/predict_batch"):
                responses["503"] = ref("Error", "No model serves yet")
    doc["paths"]["/readyz"]["get"]["responses"]["503"] = {"description": "No champion or no online features yet"}
    return _nullable(doc)


def _nullable(node):
    """Pydantic's "X or null" (``anyOf`` with ``{"type": "null"}``, JSON Schema; or, in BentoML's
    inline copy of a schema, X with a null default) as OpenAPI 3.0 says it: X with ``nullable: true``
    (an answer's ``reasons`` and ``explained_by``)."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    options = node.get("anyOf", [])
    if {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        node.update(rest[0] if len(rest) == 1 else {"anyOf": rest}, nullable=True)
    elif "default" in node and node["default"] is None and "type" in node:  # BentoML's inline copy lost it
        node["nullable"] = True
    return node


_DOCUMENT: dict = {}


async def _openapi(_request) -> JSONResponse:
    if not _DOCUMENT:
        _DOCUMENT.update(openapi_document())
    return JSONResponse(copy.deepcopy(_DOCUMENT))


ModelService.add_asgi_middleware(Gatekeeper, api_key=CFG.serving_api_key(), max_body_bytes=CFG.serving_max_body_bytes)
ModelService.mount_asgi_app(Starlette(routes=[Route("/docs.json", _openapi)]), path="/")  # ahead of BentoML's own
