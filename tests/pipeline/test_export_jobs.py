"""The export stage's job order (`pipeline/stages._ExportJobs`): every training first, costliest model
first; a model's export once its training is done; a training that failed queues no export.

    .venv/bin/python -m pytest -q tests/pipeline/test_export_jobs.py
"""
from __future__ import annotations

import models
from pipeline import workers
from pipeline.stages import _ExportJobs

NAMES = ["digits_cnn", "mobilenet_v2", "anomaly_ae"]


def _by_cost(names):
    return sorted(names, key=lambda n: -models.get(n).build_cost_s)


def test_trainings_first_then_each_export_once_its_training_is_done():
    jobs = _ExportJobs(NAMES)
    order = _by_cost(NAMES)
    first = jobs.take()
    assert first == (order[0], "train")
    jobs.finished(first, ok=True)
    # the costliest model's export is ready, yet the other trainings go first
    assert [jobs.take() for _ in order[1:]] == [(n, "train") for n in order[1:]]
    for n in reversed(order[1:]):
        jobs.finished((n, "train"), ok=True)
    assert [jobs.take() for _ in order] == [(n, "export") for n in order]
    for n in order:
        jobs.finished((n, "export"), ok=True)
    assert jobs.take() is None


def test_a_failed_training_queues_no_export():
    jobs = _ExportJobs(["digits_cnn"])
    job = jobs.take()
    jobs.finished(job, ok=False)
    assert jobs.take() is None


def test_a_free_slot_waits_for_a_running_training_then_takes_its_export():
    jobs = _ExportJobs(["digits_cnn"])
    train = jobs.take()
    assert jobs.take() == workers.WAIT     # nothing ready, but the training may still queue an export
    jobs.finished(train, ok=True)
    assert jobs.take() == ("digits_cnn", "export")
