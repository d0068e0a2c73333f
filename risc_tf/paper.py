"""The RISC paper's protocol and reported numbers (MethodsX 2024), as library constants.

For comparison and for reproducing the paper's setup only: the numbers here
were reported by the paper, with ImageNet weights; risc_tf never presents them
as its own measurements.
"""

from __future__ import annotations

from risc_tf.angles import angles_every

__all__ = ["PAPER_ANGLE_STEP", "PAPER_RESULTS", "paper_angles"]

#: Rotation step (degrees) of the paper's angle set per dataset (others: 90).
PAPER_ANGLE_STEP: dict[str, float] = {
    "pneumoniamnist": 90.0,
    "organamnist": 90.0,
    "retinamnist": 45.0,
}

#: Accuracies reported in the paper's Table 1.
PAPER_RESULTS: dict[str, dict[str, float]] = {
    "organamnist": {"rotnet_acc": 0.66, "upright_acc": 0.93, "risc_rotated_acc": 0.75},
    "pneumoniamnist": {"rotnet_acc": 0.99, "upright_acc": 0.88, "risc_rotated_acc": 0.87},
    "retinamnist": {"rotnet_acc": 0.73, "upright_acc": 0.51, "risc_rotated_acc": 0.50},
}


def paper_angles(dataset: str) -> tuple[float, ...]:
    """The paper's angle set: multiples of 45 deg for RetinaMNIST, of 90 deg otherwise.

    Examples
    --------
    >>> paper_angles("retinamnist")[:3]
    (0.0, 45.0, 90.0)
    """
    return angles_every(PAPER_ANGLE_STEP.get(dataset, 90.0))
