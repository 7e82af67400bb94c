"""The Feast store, configured from settings (a rendered feature_store.yaml).

The use case's feature repo (card fraud: ``include/usecases/fraud/feature_repo/``) holds the Feast
objects only; everything that differs by profile or deployment is in the rendered file: project,
registry, online store, and the lake root the offline store reads the definitions' relative
source paths under (``lifecycle.lake_offline_store``). Feast's CLI works on the repo with that
file: ``feast -c <repo> -f <state>/feast/feature_store.yaml plan``.

Kept free of Airflow imports: the BentoML service uses it too.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from urllib.parse import urlsplit

from lifecycle import contract
from lifecycle import settings as _settings

STORE_YAML = """\
project: {project}
provider: local
registry:
{registry}
  cache_ttl_seconds: 60
  # a view being materialized (a later day loading) keeps serving what it holds: without this, a
  # point-in-time join during another run's materialize fails (state MATERIALIZING; seen in the
  # demo: score failed and waited for its retry). Feast warns it may have no effect on a file
  # registry: the file registry reads it too.
  serve_features_while_materializing: true
online_store:
{online}
offline_store:
  type: lifecycle.lake_offline_store.LakeOfflineStore
{offline}
materialization_config:
  pull_latest_features: true  # one row per entity from a multi-day range: the newest
  online_write_batch_size: 10000  # bounded memory: 1M entities in one batch needed ~7 GB
entity_key_serialization_version: 3
"""


def lake_location(lake_root: str) -> str:
    """The lake root as Feast reads it: a local path, or ``s3://bucket/prefix`` without the Airflow
    connection id that ``LIFECYCLE_LAKE_ROOT`` carries."""
    parts = urlsplit(lake_root)
    if parts.scheme in ("", "file", "local"):
        return parts.path
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def render() -> str:
    """feature_store.yaml for the configured profile: SQLite files, or a SQL registry in
    PostgreSQL and the Redis online store; the offline store reads the lake (a folder, or S3
    through the lake's endpoint)."""
    cfg = _settings.load()
    project = f"{contract.current(cfg).name}_lifecycle"
    state = cfg.state_dir / "feast"
    svc = cfg.services
    offline = f"  root: {json.dumps(lake_location(cfg.lake_root))}"
    if svc is None:
        registry = f"  path: {state / 'registry.db'}"
        online = f"  type: sqlite\n  path: {state / 'online.db'}"
    else:
        redis = urlsplit(svc.redis_url)
        auth = f",password={redis.password}" if redis.password else ""
        registry = (
            f"  registry_type: sql\n  path: {svc.database_url('feast')}\n  sqlalchemy_config_kwargs:\n"
            "    pool_pre_ping: true"
        )
        online = f'  type: redis\n  connection_string: "{redis.hostname}:{redis.port},db={svc.redis_db}{auth}"'
        offline += f"\n  s3_endpoint_override: {json.dumps(svc.s3_endpoint_url)}"
    return STORE_YAML.format(project=project, registry=registry, online=online, offline=offline)


def store_yaml_path() -> Path:
    return _settings.load().state_dir / "feast" / "feature_store.yaml"


def get_store():
    """The Feast store for the use case's feature repo, configured from settings (rendered feature_store.yaml)."""
    from feast import FeatureStore

    path = store_yaml_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render()
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return FeatureStore(repo_path=str(contract.current().feature_repo), fs_yaml_file=path)


def delete_entities(entity: str, ids: list[str]) -> int:
    """Delete the online rows of ``ids`` of one entity, in every feature view keyed by it alone;
    returns the rows (SQLite: one per feature and entity) or keys (Redis: one per entity) deleted.

    Feast has no call that deletes some entities' rows (its Redis store deletes every row of an
    entity type), so the keys are built as Feast builds them (``serialize_entity_key``, its table
    and Redis key names). The SQLite file is vacuumed after: a deleted row's bytes would otherwise
    stay in its free pages."""
    import sqlite3

    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _redis_key, compute_table_id
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    store = get_store()
    config = store.config
    keys = [EntityKey(join_keys=[entity], entity_values=[Value(string_val=i)]) for i in ids]
    views = [v for v in store.list_feature_views() if [c.name for c in v.entity_columns] == [entity]]
    if not keys or not views:
        return 0
    if config.online_store.type == "redis":
        client = store._get_provider().online_store._get_client(config.online_store)
        redis_keys = [_redis_key(config.project, k, config.entity_key_serialization_version) for k in keys]
        return int(client.delete(*redis_keys))
    versioning = config.registry.enable_online_feature_view_versioning
    serialized = [serialize_entity_key(k, config.entity_key_serialization_version) for k in keys]
    deleted = 0
    with contextlib.closing(sqlite3.connect(config.online_store.path, timeout=60)) as conn:
        with conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            for view in views:
                table = compute_table_id(config.project, view, versioning)
                if table not in tables:  # never materialized
                    continue
                table = table.replace('"', '""')
                marks = ",".join("?" * len(serialized))
                deleted += conn.execute(f'DELETE FROM "{table}" WHERE entity_key IN ({marks})', serialized).rowcount  # noqa: S608 (names from Feast's registry)
        conn.execute("VACUUM")
    return deleted
