"""Reproducibility: a registered version's record (training set URI and digest, flavour, seed,
device, commit) is enough to retrain it to the same holdout metrics, for every flavour.

The versions are trained on the shared world's lake and Feast store, registered in a private
MLflow store (the world's registry belongs to tests/unit/test_training_promotion.py)."""

import subprocess

import pandas as pd
import pytest
from airflow.sdk import ObjectStoragePath

from lifecycle import settings, tracking, training
from lifecycle.training import FLAVOURS as CANDIDATES

SEED = 5


def _private_mlflow(mp, folder):
    from conftest import WORLD

    mp.setenv("LIFECYCLE_STATE_DIR", str(WORLD))
    mp.setenv("LIFECYCLE_MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    mp.setenv("LIFECYCLE_MLFLOW_ARTIFACT_ROOT", str(folder / "artifacts"))


@pytest.fixture(scope="module")
def registered(_world_built, tmp_path_factory):
    """One registered version per flavour, all from one training set (flavour -> version)."""
    folder = tmp_path_factory.mktemp("reproducibility")
    with pytest.MonkeyPatch.context() as mp:
        _private_mlflow(mp, folder)
        info = training.build_training_set("test__reproduce", pd.Timestamp.now(tz="UTC"))
        versions = {}
        for flavour in CANDIDATES:
            key = f"test__reproduce_{flavour}"
            parent = training.start_parent_run(key, info, "test")
            result = training.train_candidate(flavour, info, parent, seed=SEED)
            versions[flavour] = str(training.register_best([result], info, key, "test")["version"])
    return folder, info, versions


@pytest.fixture
def registry(registered, monkeypatch):
    folder, info, versions = registered
    _private_mlflow(monkeypatch, folder)
    return info, versions


def recorded_run(version: str):
    """The candidate run a version was registered from (its metrics at full precision)."""
    c = tracking.client()
    return c.get_run(c.get_model_version(settings.load().model_name, version).run_id)


def test_a_version_records_the_inputs_it_was_trained_from(registry):
    info, versions = registry
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=settings.PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    for flavour, version in versions.items():
        mv = tracking.client().get_model_version(settings.load().model_name, version)
        assert (mv.tags["flavour"], mv.tags["seed"], mv.tags["training_set_uri"], mv.tags["dataset_digest"]) == (
            flavour,
            str(SEED),
            info["uri"],
            info["digest"],
        )
        assert mv.tags["git_commit"] == head and len(head) == 40
        # the stored training set is still the one recorded: its files hash to the recorded digest
        assert training.stored_digest(mv.tags["training_set_uri"]) == mv.tags["dataset_digest"]
        params = recorded_run(version).data.params
        assert params["train_rows"] == params["fit_rows"] == str(info["train_rows"])  # under MAX_FIT_ROWS: every row


def test_a_fit_is_bounded_by_a_seeded_sample_in_time_order():
    import numpy as np

    frame = pd.DataFrame({"i": np.arange(5000)})
    one = training.fit_rows(frame, 7, 1000)
    assert len(one) == 1000 and one["i"].is_unique and one["i"].is_monotonic_increasing
    pd.testing.assert_frame_equal(one, training.fit_rows(frame, 7, 1000))  # the same seed, the same rows
    assert not one.equals(training.fit_rows(frame, 8, 1000))
    assert training.fit_rows(frame.head(800), 7, 1000).equals(frame.head(800))  # no more rows than the bound: all


def test_a_version_fitted_on_a_sample_records_it_and_retrains_on_the_same_rows(_world_built, tmp_path, monkeypatch):
    _private_mlflow(monkeypatch, tmp_path)
    monkeypatch.setenv("LIFECYCLE_MAX_FIT_ROWS", "3000")
    info = training.build_training_set("test__sampled", pd.Timestamp.now(tz="UTC"))
    assert info["train_rows"] > 3000
    parent = training.start_parent_run("test__sampled", info, "test")
    result = training.train_candidate("sklearn_logistic", info, parent, seed=SEED)
    version = str(training.register_best([result], info, "test__sampled", "test")["version"])
    params = recorded_run(version).data.params
    assert (params["train_rows"], params["fit_rows"]) == (str(info["train_rows"]), "3000")
    monkeypatch.setenv("LIFECYCLE_MAX_FIT_ROWS", "100000")  # the setting changed since: the record decides
    again = training.reproduce(version)
    assert again["reproduced"] == again["recorded"]


@pytest.mark.parametrize("flavour", CANDIDATES)
def test_retraining_a_version_from_its_record_gives_its_holdout_metrics(registry, flavour):
    import torch

    _, versions = registry
    run = recorded_run(versions[flavour])
    before = torch.get_num_threads()
    torch.set_num_threads(8)  # as on a machine with more cores than the one that trained it
    try:
        got = training.reproduce(versions[flavour])
    finally:
        torch.set_num_threads(before)
    assert (got["flavour"], got["seed"], got["device"]) == (flavour, SEED, "cpu")
    assert got["git_commit"] == got["current_commit"]
    assert got["recorded"] == {k: run.data.metrics[k] for k in training.QUALITY}
    assert got["reproduced"] == got["recorded"]  # exactly: every flavour fits deterministically on CPU
    mv = tracking.client().get_model_version(settings.load().model_name, versions[flavour])
    assert {k: f"{v:.6f}" for k, v in got["reproduced"].items()} == {
        k: mv.tags[f"holdout_{k}"] for k in training.QUALITY
    }


@pytest.mark.parametrize("flavour", ["xgboost", "pytorch_mlp"])
def test_the_recorded_seed_is_what_makes_the_metrics_equal(registry, flavour):
    """Another seed gives other metrics: the equality above is the record's doing, not a constant."""
    info, versions = registry
    train, holdout = training.load_part(info["uri"], "train"), training.load_part(info["uri"], "holdout")
    model, _, _ = training.fit(flavour, train, info["numeric"], SEED + 1, "cpu", len(train))
    other = training.quality(training.Scorer(model), holdout)
    assert other != {k: recorded_run(versions[flavour]).data.metrics[k] for k in training.QUALITY}


def test_a_changed_training_set_cannot_be_reproduced(registry):
    info, versions = registry
    part = ObjectStoragePath(info["uri"]) / "holdout.parquet"
    original = part.read_bytes()
    holdout = training.load_part(info["uri"], "holdout")
    part.write_bytes(training.lake.parquet_bytes(holdout.iloc[1:]))  # one row fewer
    try:
        with pytest.raises(
            training.ReproductionError, match=f"has digest [0-9a-f]{{16}}, not the recorded {info['digest']}"
        ):
            training.reproduce(versions["sklearn_logistic"])
    finally:
        part.write_bytes(original)
    assert training.stored_digest(info["uri"]) == info["digest"]


def test_the_mlp_fits_the_same_whatever_thread_count_the_machine_gives_torch(monkeypatch):
    """CPU gradients summed over 1 or 8 threads can differ in the last bits (on some CPUs); the MLP
    fits on its own fixed thread count, so the machine's default does not reach the model: every
    optimizer step runs on that count, and the fitted weights are bit for bit the same. (A forward
    pass at 8 threads may itself differ from 1 in the last bits, so the probabilities are compared
    at one thread count.)"""
    import numpy as np
    import torch

    from lifecycle.modeling import TorchMLP

    step, seen = torch.optim.Adam.step, set()

    def counted_step(self, *args, **kwargs):
        seen.add(torch.get_num_threads())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counted_step)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 40))
    y = (rng.random(5000) < 1 / (1 + np.exp(4 - 2 * X[:, 0]))).astype(float)
    before, models = torch.get_num_threads(), []
    try:
        for threads in (1, 8):
            torch.set_num_threads(threads)
            models.append(TorchMLP(seed=7, epochs=2).fit(X, y))
            assert torch.get_num_threads() == threads  # restored after the fit
        torch.set_num_threads(1)
        probabilities = [m.predict_proba(X)[:, 1] for m in models]
    finally:
        torch.set_num_threads(before)
    weights = [torch.cat([p.detach().flatten() for p in m.net.parameters()]).numpy() for m in models]
    assert seen == {TorchMLP().threads}
    assert np.array_equal(*weights) and np.array_equal(*probabilities)
