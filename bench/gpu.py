"""Training on CUDA against the CPU: the project's XGBoost and PyTorch MLP candidates on --rows rows.

    .local/venv/bin/python bench/gpu.py [--rows 1000000] [--cpu-only]
    .local/venv/bin/python bench/gpu.py --rows 20000     # a quick run (make bench-smoke)

Each flavour is built by ``training.estimator`` (the parameters a training task uses) and fitted on
the same seeded rows (20 numeric columns, ~5% positives), first on the CPU, then on CUDA when torch
sees a device. It prints each fit's seconds, the device the fit really ran on (XGBoost's booster
configuration: XGBoost asked for ``cuda`` without a usable GPU only warns and trains on the CPU; the
MLP's CUDA memory), the holdout PR-AUC and the speed-up over the CPU. Without a CUDA device it
prints the CPU figures and says that the CUDA fits need a GPU and a CUDA build of torch (the
Dockerfile's ``gpu`` image on a GPU host). The first CUDA fit of each flavour is preceded by an
untimed one on ``WARM_UP`` rows, so CUDA's start-up is not counted. A fit that does not run where
it was asked to fails the bench (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from lifecycle import training

FLAVOURS = ("xgboost", "pytorch_mlp")  # the candidates that train on a GPU
COLUMNS = 20
HOLDOUT = 0.2
SEED = 42
WARM_UP = 10_000  # rows of an untimed first CUDA fit, which pays for CUDA's start-up


def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded rows whose label depends on a few columns and their interaction, ~5% positive."""
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((n, COLUMNS), dtype=np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] + 0.8 * X[:, 2] * X[:, 3] - 4.2
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


def ran_on(flavour: str, est) -> str:
    """The device a fitted estimator really trained on."""
    if flavour == "xgboost":
        config = json.loads(est.get_booster().save_config())
        return config["learner"]["generic_param"]["device"]
    import torch

    # the fit's own peak: fit() resets it before each fit
    return "cuda" if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0 else "cpu"


def fit(flavour: str, dev: str, X: np.ndarray, y: np.ndarray, split: int) -> dict:
    from sklearn.metrics import average_precision_score

    est = training.estimator(flavour, SEED, dev)
    if dev == "cuda":
        import torch

        training.estimator(flavour, SEED, dev).fit(X[:WARM_UP], y[:WARM_UP])  # CUDA's start-up
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    est.fit(X[:split], y[:split])
    seconds = time.perf_counter() - start
    device = ran_on(flavour, est)
    if flavour == "xgboost":
        est.set_params(device="cpu")  # scored on the CPU, as the project serves it
    pr_auc = average_precision_score(y[split:], est.predict_proba(X[split:])[:, 1])
    return {"flavour": flavour, "asked": dev, "ran_on": device, "seconds": seconds, "pr_auc": pr_auc}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cpu-only", action="store_true", help="skip the CUDA fits")
    args = parser.parse_args()
    X, y = rows(args.rows)
    split = int(args.rows * (1 - HOLDOUT))
    sees_cuda = training.device() == "cuda"
    cuda = sees_cuda and not args.cpu_only
    print(f"{args.rows:,} rows x {COLUMNS} columns, {y.mean():.1%} positive; training on {split:,}")
    print("CPU fits use the project's 2 threads (training.estimator), as a training task does")
    print(f"{'flavour':<12} {'asked':<6} {'ran on':<8} {'seconds':>8} {'PR-AUC':>7} {'speed-up':>9}")
    wrong = []
    for flavour in FLAVOURS:
        cpu = fit(flavour, "cpu", X, y, split)
        results = [cpu, fit(flavour, "cuda", X, y, split)] if cuda else [cpu]
        for r in results:
            speedup = f"{cpu['seconds'] / r['seconds']:.1f}x" if r is not cpu else ""
            print(
                f"{r['flavour']:<12} {r['asked']:<6} {r['ran_on']:<8} {r['seconds']:>8.1f} "
                f"{r['pr_auc']:>7.4f} {speedup:>9}"
            )
            if not r["ran_on"].startswith(r["asked"]):
                wrong.append(f"{flavour} asked for {r['asked']} ran on {r['ran_on']}")
    if not sees_cuda:
        print("torch sees no CUDA device (the lock's CPU build sees none even on a GPU host): the CUDA")
        print("fits need a GPU and a CUDA build of torch, as the Dockerfile's gpu image has")
    elif args.cpu_only:
        print("--cpu-only: the CUDA fits were skipped")
    for problem in wrong:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
