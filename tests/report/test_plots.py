"""The plots' drawing in two processes (`pipeline/report/plots._draw_in_two`): every figure with data is
drawn once, those without none, and a child that dies leaves its half to the parent.

    .venv/bin/python -m pytest -q tests/report/test_plots.py
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt

from pipeline.report import plots


def _fig():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    return fig


def test_each_figure_with_data_is_drawn_once_across_the_two_processes(tmp_path):
    items = [(f"f{i}", _fig) for i in range(5)] + [("empty", lambda: None)]
    drawn = plots._draw_in_two(items, tmp_path)
    assert sorted(drawn) == [f"f{i}" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}.png" for i in range(5)]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in tmp_path.iterdir())


def test_a_child_that_fails_leaves_its_half_to_the_parent(tmp_path):
    parent = os.getpid()

    def only_here():
        if os.getpid() != parent:
            raise RuntimeError("the child cannot draw this")
        return _fig()
    items = [("a", _fig), ("b", only_here), ("c", _fig), ("d", only_here)]   # b, d: the child's half
    assert sorted(plots._draw_in_two(items, tmp_path)) == ["a", "b", "c", "d"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
