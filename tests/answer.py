"""The check every test of a run's terminal applies: the run ends with the answer (pipeline/report/glance.py).

    from answer import check_answer
    check_answer(stdout_lines, results_dir)   # the last lines name the report and every model's picks
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report.glance import MAX_LINES     # the "at most ~15 lines" (a run of a few models)


def check_answer(lines: list[str], results: Path) -> list[str]:
    """The block the run ends with: it starts at "[answer]", is at most MAX_LINES long, names every
    model's Android and iOS pick as the results' own view picks them, and ends with the report's path.
    Returns the block."""
    from pipeline import stages
    from pipeline.artifact import ArtifactId
    from pipeline.report import glance
    from pipeline.report.picks import PLATFORM_NAME, picks
    from pipeline.report.view import build
    starts = [i for i, ln in enumerate(lines) if ln.startswith("[answer] ")]
    assert starts, f"no [answer] block at the end: {lines[-20:]}"
    block = lines[starts[-1]:]
    assert len(block) <= MAX_LINES, block
    assert block[-1].startswith("  report: ") and str(results / "report.html") in block[-1], block
    view = build(stages.all_records(results))
    models = glance.models(view)
    assert models, "the results hold no measured model"
    names = set(PLATFORM_NAME.values())
    for m in models:
        (i,) = [n for n, ln in enumerate(block) if ln.split()[:1] == [m]]
        by_platform = {}          # platform name -> its line ("Android+iOS ...": one file for both)
        for k, line in enumerate(block[i:i + len(PLATFORM_NAME)]):
            label = line.split()[1 if k == 0 else 0]
            if not set(label.split("+")) <= names:
                break
            by_platform.update({name: line for name in label.split("+")})
        for p in picks(view, m):
            line = by_platform.get(PLATFORM_NAME[p.platform])
            assert line, (m, p.platform, block)
            if p.record is None:
                assert "none:" in line, line
                continue
            assert ArtifactId.of(p.record).stem in line, (m, p.platform, ArtifactId.of(p.record).stem, line)
            assert p.record.status == "ok" and p.record.model == m
    return block
