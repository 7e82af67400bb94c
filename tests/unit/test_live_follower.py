"""The registry follower's bookkeeping, with the registry and the loader replaced by plain functions."""

import pytest

from lifecycle import live, settings
from lifecycle.aliases import CHAMPION, PREVIOUS


@pytest.fixture
def follower(monkeypatch):
    f = live.RegistryFollower(settings.load())
    f.aliases = {CHAMPION: "1"}
    f.loads, f.failures = [], {}
    monkeypatch.setattr(f, "wanted", lambda: dict(f.aliases))

    def load(cfg, version):
        f.loads.append(version)
        if version in f.failures:
            raise f.failures[version]
        return live.Loaded(version, object(), "digest", 0.0)

    monkeypatch.setattr(live, "load_version", load)
    return f


def test_previous_champion_is_loaded_ahead_and_versions_no_alias_names_are_freed(follower):
    follower.aliases = {CHAMPION: "2", PREVIOUS: "1"}
    follower.refresh()
    assert follower.routing.versions()[CHAMPION] == "2" and sorted(follower._cache) == ["1", "2"]
    follower.aliases = {CHAMPION: "1", PREVIOUS: "2"}  # a rollback: both already loaded
    follower.refresh()
    assert follower.routing.versions()[CHAMPION] == "1" and follower.loads == ["2", "1"]
    follower.aliases = {CHAMPION: "3", PREVIOUS: "1"}
    follower.refresh()
    assert sorted(follower._cache) == ["1", "3"]  # version 2 is named by no alias any more


def test_a_failed_load_is_tried_again_later_but_a_tampered_version_never(follower, monkeypatch):
    follower.refresh()
    follower.failures = {"2": OSError("registry unreachable"), "3": live.DigestMismatch("tampered")}
    follower.aliases = {CHAMPION: "2"}
    follower.refresh()
    follower.refresh()
    assert follower.routing.versions()[CHAMPION] == "1" and follower.loads.count("2") == 1  # waits to retry
    assert "registry unreachable" in follower.status()["refused_versions"]["2"]
    follower.failures.pop("2")
    monkeypatch.setattr(live.time, "monotonic", lambda: 10**12)  # past the retry delay
    follower.refresh()
    assert follower.routing.versions()[CHAMPION] == "2" and "2" not in follower.status()["refused_versions"]
    follower.aliases = {CHAMPION: "3"}
    follower.refresh()
    follower.refresh()
    assert follower.routing.versions()[CHAMPION] == "2" and follower.loads.count("3") == 1
