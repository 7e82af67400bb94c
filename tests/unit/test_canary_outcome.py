"""The canary's outcome from its gates: labels and operations decide, a moved score distribution
holds the canary until labels judge it and then needs a human for the rollout."""

import pytest

from lifecycle import canary
from lifecycle.canary import ABORT, FAIL, PASS, PENDING, ROLLOUT, WAIT


@pytest.mark.parametrize(
    ("operational", "distribution", "quality", "expected"),
    [
        (PASS, PASS, PASS, (ROLLOUT, False)),
        (PASS, FAIL, PASS, (ROLLOUT, True)),  # better on labels, scores moved: a human approves
        (PASS, FAIL, PENDING, (WAIT, False)),  # moved scores, no labels yet: hold, never roll out
        (PASS, PENDING, PASS, (WAIT, False)),
        (PENDING, PASS, PASS, (WAIT, False)),
        (FAIL, PASS, PASS, (ABORT, False)),
        (PASS, PASS, FAIL, (ABORT, False)),
        (PENDING, FAIL, FAIL, (ABORT, False)),
    ],
)
def test_outcome(operational, distribution, quality, expected):
    assert canary.outcome({"operational": operational, "distribution": distribution, "quality": quality}) == expected


def test_no_evidence_waits():
    assert canary.outcome({"operational": PENDING}) == (WAIT, False)
