"""The early-stop rule both frameworks' training loops share (`models/spec.TrainConfig.plateaued`).

    .venv/bin/python -m pytest -q tests/models/test_train_config.py
"""
from __future__ import annotations

from models.spec import TrainConfig


def test_the_plateau_rule_needs_patience_epochs_in_a_row():
    cfg = TrainConfig(epochs=20, plateau=0.005, patience=2)
    # anomaly_ae's PyTorch curve (2026-12-06): the gains fall under 0.5 % from epoch 3 on
    curve = [0.7814, 0.6447, 0.6387, 0.6372, 0.6371, 0.6337]
    stops = [n for n in range(1, len(curve) + 1) if cfg.plateaued(curve[:n])]
    assert stops[0] == 5, stops            # 0.6387 -> 0.6372 -> 0.6371: two small gains in a row
    assert not cfg.plateaued([1.0, 0.5, 0.499, 0.3])              # one small gain is not a plateau
    assert cfg.plateaued([1.0, 0.5, 0.51, 0.52])                  # a loss that went up gains nothing
    assert not TrainConfig(plateau=0.0).plateaued([1.0, 1.0, 1.0, 1.0])   # 0: every epoch runs
