"""The Feast store, configured from settings (a rendered feature_store.yaml).

Kept free of Airflow imports: the BentoML service uses it too.
"""
from __future__ import annotations

from pathlib import Path

from lifecycle import settings as _settings

STORE_YAML = """\
project: fraud_lifecycle
provider: local
registry:
  path: {registry}
  cache_ttl_seconds: 60
online_store:
  type: sqlite
  path: {online}
offline_store:
  type: file
entity_key_serialization_version: 3
"""


def store_yaml_path() -> Path:
    return _settings.load().state_dir / "feast" / "feature_store.yaml"


def get_store():
    """The Feast store for the feature repo, configured from settings (rendered feature_store.yaml)."""
    from feast import FeatureStore

    state = _settings.load().state_dir / "feast"
    state.mkdir(parents=True, exist_ok=True)
    path = store_yaml_path()
    text = STORE_YAML.format(registry=state / "registry.db", online=state / "online.db")
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return FeatureStore(repo_path=str(_settings.load().feature_repo), fs_yaml_file=path)
