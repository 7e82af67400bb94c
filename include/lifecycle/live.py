"""The live model: which registered versions serve, and scoring requests with them.

The registry is the control plane. A thread reads the model's aliases every
LIFECYCLE_SERVING_POLL_SECONDS, loads a version the first time an alias points at it (after
checking its artifact digest against the one recorded at registration) and swaps in a new,
immutable ``Routing`` with one assignment: a request sees the old set or the new one, never a
mix, and never waits for the registry. A failed load or an unreachable registry keeps what
serves and is reported by ``status()``.

Routing: ``champion`` answers; when ``canary`` exists, the entities (``UseCase.route_by``; card
fraud: cards) whose hash falls under LIFECYCLE_CANARY_SHARE get the canary (sticky per entity);
with LIFECYCLE_SHADOW the ``challenger`` also scores every request, logged and never returned.
A champion that fails to score is logged as failed and the ``previous_champion`` (loaded ahead)
answers under arm ``fallback``; with no previous champion the request answers 503.
Each scored row goes to the prediction log with the exact inputs the model read and the age of
the stored features it was served (``feature_age_s``).

Stored features follow the rule of the training join: a snapshot older than its view's TTL at the
event's time is not served (the entity is served as unknown, as training saw it), and its age is
still logged, so a stalled ``features`` DAG shows as old features and unknown entities.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lifecycle import contract, feature_store, health, prediction_log, prediction_writer, pseudonym, tracking
from lifecycle import settings as _settings
from lifecycle.aliases import CANARY, CHALLENGER, CHAMPION, FALLBACK, PREVIOUS, SHADOW

LOG = logging.getLogger(__name__)
RETRY_SECONDS = 30  # before loading again a version whose download or load failed
EXPLAIN_TOP = 5  # inputs an explained answer names


class NotReady(RuntimeError):
    """No champion is loaded yet (nothing registered, or its first load failed), or no online features yet."""


class ChampionFailed(NotReady):
    """The champion failed to score and no previous champion could answer instead."""


def bucket(key: str) -> float:
    """An entity's stable position in [0, 1): the same entity always lands in the same arm."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


@dataclass(frozen=True)
class Loaded:
    version: str
    model: object  # lifecycle.modeling.LifecycleModel
    digest: str
    loaded_at: float


@dataclass(frozen=True)
class Routing:
    champion: Loaded | None = None
    canary: Loaded | None = None
    challenger: Loaded | None = None
    aliases: dict = field(default_factory=dict)
    previous: Loaded | None = None  # never routed: answers only when the champion fails to score

    def versions(self) -> dict[str, str | None]:
        return {a: getattr(self, a).version if getattr(self, a) else None for a in (CHAMPION, CANARY, CHALLENGER)}

    def arms(self, keys: list[str], share: float) -> list[str]:
        if self.canary is None or share <= 0:
            return [CHAMPION] * len(keys)
        return [CANARY if bucket(k) < share else CHAMPION for k in keys]


class RegistryFollower:
    """Keeps ``routing`` equal to what the registry's aliases say, loading each version once."""

    def __init__(self, cfg: _settings.Settings | None = None):
        self.cfg = cfg or _settings.load()
        self.routing = Routing()
        self._cache: dict[str, Loaded] = {}
        self._refused: dict[str, str] = {}  # version -> why it was not loaded
        self._retry_at: dict[str, float] = {}  # version -> when to try a failed (not tampered) load again
        self._stop = threading.Event()
        self.last_poll: float | None = None
        self.registry_error: str | None = None
        self.switches: list[dict] = []  # what changed, when: the service's own audit trail

    def start(self) -> RegistryFollower:
        self.refresh()
        threading.Thread(target=self._run, name="registry-follower", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.cfg.serving_poll_seconds):
            self.refresh()

    def wanted(self) -> dict[str, str]:
        """Alias -> version that should serve now (a pinned service serves one version as champion)."""
        if self.cfg.serving_pin_version:
            return {CHAMPION: self.cfg.serving_pin_version}
        model = tracking.client().get_registered_model(self.cfg.model_name)
        wanted = {a: str(v) for a, v in model.aliases.items() if a in (CHAMPION, CANARY, PREVIOUS)}
        if self.cfg.shadow and CHALLENGER in model.aliases:
            wanted[CHALLENGER] = str(model.aliases[CHALLENGER])
        return wanted

    def refresh(self) -> None:
        try:
            wanted = self.wanted()
        except Exception as err:  # registry down or the model not registered yet: keep serving
            self.registry_error = f"{type(err).__name__}: {err}"[:500]
            return
        finally:
            self.last_poll = time.time()
        self.registry_error = None
        current = self.routing
        chosen = {}
        for alias in (CHAMPION, CANARY, CHALLENGER):
            version = wanted.get(alias)
            loaded = self._load(version) if version else None
            if version and loaded is None:  # refused: keep what serves under this alias
                loaded = getattr(current, alias)
            chosen[alias] = loaded
        # loaded ahead, never routed: a rollback then swaps without a download, and it answers when
        # the champion fails to score
        previous = self._load(wanted[PREVIOUS]) if wanted.get(PREVIOUS) else None
        for version in set(self._cache) - set(wanted.values()) - {v for v in current.versions().values() if v}:
            del self._cache[version]  # no alias names it any more: free its memory
        new = Routing(**chosen, aliases=wanted, previous=previous)
        if new.versions() != current.versions():
            self.routing = new  # one assignment: requests see the old routing or the new one
            self.switches.append({"at": time.time(), **new.versions()})
            LOG.info("serving %s", new.versions())
        else:
            self.routing = Routing(current.champion, current.canary, current.challenger, wanted, previous)

    def _load(self, version: str) -> Loaded | None:
        if version in self._cache:
            return self._cache[version]
        if version in self._refused and time.monotonic() < self._retry_at.get(version, float("inf")):
            return None
        try:
            self._cache[version] = load_version(self.cfg, version)
            self._refused.pop(version, None)
            return self._cache[version]
        except Exception as err:  # a digest mismatch is final; anything else is tried again later
            self._refused[version] = f"{type(err).__name__}: {err}"[:500]
            if not isinstance(err, DigestMismatch):
                self._retry_at[version] = time.monotonic() + RETRY_SECONDS
            LOG.error("model version %s not loaded, keeping what serves: %s", version, self._refused[version])
            return None

    def status(self) -> dict:
        r = self.routing
        return {
            "serving": r.versions(),
            "fallback": r.previous.version if r.previous else None,
            "aliases": r.aliases,
            "pinned": self.cfg.serving_pin_version or None,
            "loaded_versions": sorted(self._cache, key=int),
            "refused_versions": dict(self._refused),
            "registry_error": self.registry_error,
            "last_poll": self.last_poll,
            "poll_seconds": self.cfg.serving_poll_seconds,
            "switches": self.switches[-20:],
        }


class DigestMismatch(RuntimeError):
    """The downloaded artifacts are not the ones registered."""


def load_version(cfg: _settings.Settings, version: str) -> Loaded:
    """Download a registered version, check its digest, load its LifecycleModel."""
    import mlflow

    mv = tracking.client().get_model_version(cfg.model_name, version)
    expected = mv.tags.get("artifact_digest")
    if not expected:
        raise DigestMismatch(f"version {version} has no artifact_digest tag (registered without one)")
    with tempfile.TemporaryDirectory(prefix=f"model-v{version}-") as tmp:
        path = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{cfg.model_name}/{version}", dst_path=tmp)
        digest = tracking.artifact_digest(Path(path))
        if digest != expected:
            raise DigestMismatch(
                f"version {version}: artifact digest {digest[:12]}… is not the registered {expected[:12]}…"
            )
        model = mlflow.pyfunc.load_model(path).unwrap_python_model().single_threaded()
    model.fitted  # noqa: B018  (prepared now, not on the first request)
    return Loaded(version=str(version), model=model, digest=digest, loaded_at=time.time())


def _epoch(value) -> float:
    """Seconds since the epoch of a timestamp (a datetime, naive ones in UTC, or an RFC 3339 string)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


class OnlineFeatures:
    """The feature service's stored features for many entity rows, read from the online store.

    Feast's ``get_online_features`` resolves the service against the registry, builds a response
    proto and converts it per value on every call: 0.6 ms for one row and ~60 µs a row in a batch
    here, most of a request. This reads the same views through the same online store
    (``online_read``, the interface every Feast online store implements) once per unique entity,
    with the views resolved once at start-up. Feast's online reads ignore the views' TTL; this
    applies it as the training join does (``lake_offline_store``): a snapshot older than the TTL at
    the event's time is served as missing. tests/integration/test_live_service.py checks served
    features equal the point-in-time join."""

    def __init__(self, store, feature_service):
        self.store = store
        self.provider = store._get_provider()  # noqa: SLF001  (Feast has no public online_read entry)
        self.views = []
        for projection in feature_service.feature_view_projections:
            view = store.get_feature_view(projection.name)
            ttl = view.ttl.total_seconds() if view.ttl else None
            self.views.append((view, view.join_keys, [f.name for f in projection.features], ttl))

    def read(self, columns: dict[str, list], times: list | None = None) -> tuple[dict[str, list], list]:
        """(feature -> a value per row, the age in seconds at each row's event time of its oldest
        stored snapshot, None for a row no view had a snapshot for). Without ``times`` no TTL applies."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        events = [_epoch(t) for t in times] if times is not None else None
        ages: list = [None] * len(next(iter(columns.values()), []))
        out = {}
        for view, keys, names, ttl in self.views:
            rows = list(zip(*(columns[k] for k in keys), strict=True))
            unique = list(dict.fromkeys(rows))
            protos = [EntityKey(join_keys=keys, entity_values=[Value(string_val=v) for v in key]) for key in unique]
            found = dict(
                zip(
                    unique,
                    self.provider.online_read(
                        config=self.store.config, table=view, entity_keys=protos, requested_features=names
                    ),
                    strict=True,
                )
            )
            fresh = [True] * len(rows)
            if events is not None:
                stamps = {key: _epoch(ts) for key, (ts, feats) in found.items() if ts is not None and feats}
                for i, key in enumerate(rows):
                    if key in stamps:
                        age = events[i] - stamps[key]
                        ages[i] = age if ages[i] is None else max(ages[i], age)
                        fresh[i] = ttl is None or age <= ttl
            for name in names:
                values = {}
                for key, (_, feats) in found.items():
                    v = feats.get(name) if feats else None
                    kind = v.WhichOneof("val") if v is not None else None
                    values[key] = getattr(v, kind) if kind and kind != "null_val" else None
                out[name] = [values[r] if fresh[i] else None for i, r in enumerate(rows)]
        return out, ages


class LiveModel:
    """Online features + routed models + prediction log: what one serving process runs."""

    def __init__(
        self, cfg: _settings.Settings | None = None, follower: RegistryFollower | None = None, log=None, store=None
    ):
        self.cfg = cfg or _settings.load()
        self.uc = contract.current(self.cfg)
        self.store = store or feature_store.get_store()
        self.online: OnlineFeatures | None = None  # once the feature service is in Feast's registry
        self.online_error: str | None = None
        self.follower = follower or RegistryFollower(self.cfg)
        self.log = log or prediction_writer.PredictionLog(self.cfg)
        self.names = pseudonym.of(self.cfg)  # the log keeps ids as pseudonyms
        self.health = health.Recent()

    def start(self) -> LiveModel:
        self.follower.start()
        self.log.start()
        self.open_online()
        gc.freeze()  # what start-up loaded is never collected: full collections stay short on the request path
        return self

    def open_online(self) -> bool:
        """Open the use case's online features, unless open already: False (the reason in
        ``online_error``) while Feast's registry lacks them. A service starts with its deployment,
        before the first features run applies the definitions; it waits unready instead of failing
        its start-up (a worker that exits is restarted, each import costing seconds of CPU)."""
        if self.online is None:
            try:
                service = self.store.get_feature_service(self.uc.feature_service, allow_cache=False)
                online = OnlineFeatures(self.store, service)
                online.read(dict.fromkeys(self.uc.entities, [""]))  # opens the store's connection: not on a request
            except Exception as err:  # not applied or not materialized yet, or the store unreachable
                self.online_error = f"feature service {self.uc.feature_service!r}: {type(err).__name__}: {err}"[:500]
                return False
            self.online, self.online_error = online, None
        return True

    def close(self) -> None:
        self.follower.stop()
        self.log.close()

    @property
    def ready(self) -> bool:
        return self.follower.routing.champion is not None and self.open_online()

    def features(self, columns: dict[str, list]) -> tuple[dict[str, list], list]:
        """Stored features for each row's entities (within their TTL at the row's event time),
        merged with the request's own fields; and each row's feature age (``OnlineFeatures.read``)."""
        if not self.open_online():
            raise NotReady(f"no online features yet: {self.online_error}")
        stored, ages = self.online.read(columns, columns[self.uc.time])
        return {**stored, **columns}, ages

    def predict(self, columns: dict[str, list], explain: list[bool] | None = None) -> list[dict]:
        """Score events given as columns (request fields -> values); one answer per row. A row whose
        ``explain`` is true is answered with its ``reasons`` too: the inputs that drove its score, from
        the model that scored it (``LifecycleModel.reasons``), kept in the prediction log."""
        start = time.perf_counter()
        routing = self.follower.routing  # one read: this request's whole view of the registry
        if routing.champion is None:
            raise NotReady(f"no model serves yet: {self.follower.status()['registry_error'] or 'no champion loaded'}")
        uc = self.uc
        n = len(columns[uc.id])
        data, ages = self.features(columns)
        arms = routing.arms(columns[uc.route_by], self.cfg.canary_share)
        request_ids = [uuid.uuid4().hex for _ in range(n)]
        known = {flag: [v is not None for v in data[feature]] for flag, feature in uc.known_flags.items()}
        missing = [not all(flags) for flags in zip(*known.values(), strict=True)] if known else [False] * n
        answers: list[dict | None] = [None] * n
        logged, failed = [], []  # (arm, loaded, part, idx, inputs, probs, reasons) and (arm, loaded, idx, error)

        def score(arm: str, loaded: Loaded, idx: list[int], answer: bool) -> None:
            part = data if len(idx) == n else {k: [v[i] for i in idx] for k, v in data.items()}
            inputs = loaded.model.inputs(part)
            probs = loaded.model.score(inputs)
            asked = [j for j, i in enumerate(idx) if explain[i]] if answer and explain and any(explain) else []
            reasons = None
            if asked:
                given = loaded.model.reasons({k: v[asked] for k, v in inputs.items()}, EXPLAIN_TOP)
                reasons = [None] * len(idx)
                for j, why in zip(asked, given, strict=True):
                    reasons[j] = why
            if answer:
                for j, i in enumerate(idx):
                    answers[i] = {
                        uc.id: columns[uc.id][i],
                        "request_id": request_ids[i],
                        uc.score: float(probs[j]),
                        "model_name": self.cfg.model_name,
                        "model_version": loaded.version,
                        "arm": arm,
                        "feature_service": uc.feature_service,
                        **{flag: values[i] for flag, values in known.items()},
                    }
                    if reasons is not None and reasons[j] is not None:
                        answers[i] |= {"reasons": reasons[j], "explained_by": loaded.model.explained_by}
            logged.append((arm, loaded, part, idx, inputs, probs, reasons))

        def attempt(arm: str, loaded: Loaded, idx: list[int], answer: bool) -> bool:
            try:
                score(arm, loaded, idx, answer)
                return True
            except Exception as err:  # the failure is evidence (the watch's and the canary's error rate)
                LOG.warning("%s v%s failed to score %d rows: %s", arm, loaded.version, len(idx), err)
                failed.append((arm, loaded, idx, f"{type(err).__name__}: {err}"[:500]))
                return False

        champion_idx = list(range(n)) if CANARY not in arms else [i for i, a in enumerate(arms) if a == CHAMPION]
        # shadow scores, never returned: the challenger when LIFECYCLE_SHADOW is on, and a live canary
        # (its scores on the same traffic as the champion's are the canary decision's distribution gate)
        shadows = [routing.challenger] if routing.challenger is not None else []
        if routing.canary is not None and all(s.version != routing.canary.version for s in shadows):
            shadows.append(routing.canary)
        optional = [(SHADOW, loaded, list(range(n)), False) for loaded in shadows]
        if CANARY in arms:
            optional.insert(0, (CANARY, routing.canary, [i for i, a in enumerate(arms) if a == CANARY], True))
        for arm, loaded, idx, answer in optional:  # a broken canary or shadow never fails a request
            if not attempt(arm, loaded, idx, answer) and answer:
                champion_idx = sorted(champion_idx + idx)  # the champion answers
        refused = None
        if champion_idx and not attempt(CHAMPION, routing.champion, champion_idx, True):
            fallback = routing.previous
            if fallback is None or fallback.version == routing.champion.version:
                refused = f"champion v{routing.champion.version} failed to score: {failed[-1][3]}"
            elif not attempt(FALLBACK, fallback, champion_idx, True):
                refused = f"champion v{routing.champion.version} and fallback v{fallback.version} failed to score"
        self._record(request_ids, data, ages, missing, logged, failed, (time.perf_counter() - start) * 1000)
        if refused:
            raise ChampionFailed(refused)
        return answers

    def _record(self, request_ids, data, ages, missing, logged, failed, latency_ms: float) -> None:
        """Every scored and every failed row to the prediction log, and to the live health figures."""
        uc = self.uc
        served_at = datetime.now(UTC)
        for arm, loaded, part, idx, inputs, probs, reasons in logged:
            self.log.append(
                prediction_log.rows(
                    uc,
                    [request_ids[i] for i in idx],
                    part,
                    inputs,
                    probs,
                    loaded.version,
                    arm,
                    latency_ms,
                    served_at,
                    self.cfg.serving_source,
                    self.names,
                    feature_age_s=[ages[i] for i in idx],
                    missing_features=[missing[i] for i in idx],
                    reasons=reasons,
                )
            )
        for arm, loaded, idx, error in failed:
            part = {k: [data[k][i] for i in idx] for k in uc.keys}
            self.log.append(
                prediction_log.rows(
                    uc,
                    [request_ids[i] for i in idx],
                    part,
                    {},
                    np.full(len(idx), np.nan),
                    loaded.version,
                    arm,
                    latency_ms,
                    served_at,
                    self.cfg.serving_source,
                    self.names,
                    error=error,
                    feature_age_s=[ages[i] for i in idx],
                    missing_features=[missing[i] for i in idx],
                    reasons=reasons,
                )
            )
        for arm, loaded, _, idx, _, _, _ in logged:
            self.health.add(
                arm, loaded.version, latency_ms, [False] * len(idx), [missing[i] for i in idx], [ages[i] for i in idx]
            )
        for arm, loaded, idx, _ in failed:
            self.health.add(
                arm, loaded.version, latency_ms, [True] * len(idx), [missing[i] for i in idx], [ages[i] for i in idx]
            )

    def status(self) -> dict:
        return {
            "ready": self.ready,
            "model_name": self.cfg.model_name,
            "source": self.cfg.serving_source,
            "canary_share": self.cfg.canary_share,
            "shadow": self.cfg.shadow,
            **self.follower.status(),
            "online_features_error": self.online_error,
            "prediction_log": self.log.status(),
            "live": self.health.summary(),
        }
