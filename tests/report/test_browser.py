"""report.html as a reader sees it, and the terminal `python -m pipeline report` ends with: one report written by
the real command from the records of a real bench run (tests/report/data/digits_glance.jsonl: digits_cnn's
export, bench and emulated-ARM64 records of the 2026-12-07 19:00 run with the Core AI paths, slimmed to the
fields the report reads), then rendered by headless Chromium (Debian package `chromium`, installed here with
apt-get when missing; skipped with the reason when it cannot be) in a 1366x768 window: the first screen shows
the headline table and a picture, the page never scrolls sideways, a click on a header sorts its table, every
embedded plot is decoded and visible, and no in-page link points nowhere.

    .venv/bin/python -m pytest -q tests/report/test_browser.py
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from answer import check_answer
from conftest import ROOT

RECORDS = ROOT / "tests" / "report" / "data" / "digits_glance.jsonl"
WINDOW = (1366, 768)
# runs in the page after load: what the test asserts, written into the DOM that --dump-dom prints
CHECK = """<script>
window.addEventListener('load', () => {
  const screen = innerHeight, rect = e => e.getBoundingClientRect();
  // the first table after a heading (paragraphs may come between)
  const after = h => { let e = h && h.nextElementSibling;
                       while (e && !e.querySelector('table') && !/^H[1-3]$/.test(e.tagName)) e = e.nextElementSibling;
                       return e && e.querySelector('table'); };
  const imgs = [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,
                                               shown: rect(i).width, top: rect(i).top + scrollY}));
  const links = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1));
  const broken = [...new Set(links.filter(id => !document.getElementById(decodeURIComponent(id))))];
  const glance = document.getElementById('at-a-glance');
  const headline = after(glance);
  // sort: the support matrix by its first model's column, then again (reversed)
  const grid = after(document.getElementById('support-matrix-model-x-export-path'));
  const col = i => [...grid.tBodies[0].rows].map(r => r.cells[i].textContent);
  const before = col(1);
  grid.tHead.rows[0].cells[1].click();
  const asc = col(1);
  grid.tHead.rows[0].cells[1].click();
  const desc = col(1);
  const every = after(document.querySelector('h3[id^="every-artifact"]'));
  const kib = [...every.tHead.rows[0].cells].findIndex(c => c.textContent.trim() === 'KiB');
  every.tHead.rows[0].cells[kib].click();
  const sizes = [...every.tBodies[0].rows].map(r => parseFloat(r.cells[kib].textContent));
  const out = document.createElement('pre');
  out.id = 'mb-check';
  out.textContent = JSON.stringify({
    first_h2: document.querySelector('h2').id, findings: !!document.getElementById('findings'),
    headline_bottom: headline && rect(headline).bottom + scrollY, headline_rows: headline && headline.tBodies[0].rows.length,
    screen, page_width: document.documentElement.scrollWidth, window_width: innerWidth,
    grid_scrolls: getComputedStyle(grid.parentElement).overflowX, before, asc, desc, sizes,
    tinted: [...grid.querySelectorAll('td[class^="st-"]')].length, tips: [...grid.querySelectorAll('td[title]')].length,
    imgs, links: links.length, broken});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe:
        return exe
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("chromium is not installed and this user cannot apt-get install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if p.returncode != 0:
            pytest.skip(f"could not install chromium ({' '.join(cmd)}): {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    return shutil.which("chromium") or pytest.skip("apt-get installed chromium but it is not on PATH")


def _report(results, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "--results", str(results), "report", *extra], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """results/ holding the run's records, and the report the real command wrote from them (its stdout)."""
    results = tmp_path_factory.mktemp("glance") / "results"
    results.mkdir()
    shutil.copy(RECORDS, results / "results.jsonl")
    p = _report(results)
    assert p.returncode == 0 and p.stderr == "", p.stderr[-2000:]
    return results, p.stdout.splitlines()


def test_the_report_command_ends_with_the_answer_and_prints_the_full_table_on_request(written):
    results, lines = written
    block = check_answer(lines, results)
    assert any("keras_tw__keras_coreai_fp32 (coreai)" in ln for ln in block), block   # iOS: Core AI first
    assert not any(ln.startswith("| ") for ln in lines), "the full table is printed only with --table"
    t = _report(results, "--table")                         # the report is up to date: nothing redrawn
    assert t.returncode == 0 and "[report] up to date" in t.stdout, t.stdout[-2000:]
    rows = [ln for ln in t.stdout.splitlines() if ln.startswith("| digits_cnn/")]
    assert len(rows) == sum('"kind": "bench"' in ln for ln in RECORDS.read_text().splitlines())
    check_answer(t.stdout.splitlines(), results)


def test_report_html_in_headless_chromium(written, tmp_path):
    exe = _chromium()
    results, _ = written
    page = tmp_path / "check.html"
    page.write_text((results / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars", "--virtual-time-budget=10000",
                        "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    m = re.search(r'<pre id="mb-check">(.*?)</pre>', p.stdout, re.S)
    assert m, f"chromium printed no check result (exit {p.returncode}): {p.stderr[-500:]}"
    res = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    # the first screen: the headline table whole, and a picture
    # the viewport: the window less the browser's own bars (681 px in Chromium 1xx headless), as a reader's
    assert 600 <= res["screen"] <= WINDOW[1], res["screen"]
    assert res["first_h2"] == "at-a-glance" and res["findings"], res
    assert res["headline_rows"] == 1 and res["headline_bottom"] <= res["screen"], res
    first = min(res["imgs"], key=lambda i: i["top"])
    assert first["alt"].startswith("digits_cnn: size vs cost") and first["top"] < res["screen"] * 0.6, first
    # the page never scrolls sideways: wide tables scroll in their box
    assert res["page_width"] <= res["window_width"], (res["page_width"], res["window_width"])
    assert res["grid_scrolls"] == "auto"
    # a click on a header sorts the table by that column; a second click reverses it
    assert res["asc"] == sorted(res["before"], key=str.lower) and res["desc"] == res["asc"][::-1], res
    assert res["asc"] != res["before"] or res["desc"] != res["before"]
    assert res["sizes"] == sorted(res["sizes"]) and len(res["sizes"]) > 10, res["sizes"]
    # the support matrix: tinted by status, each not-ok cell's causes in its tooltip
    assert res["tinted"] >= 28 and res["tips"] >= 5, res
    assert len(res["imgs"]) >= 5, res["imgs"]
    bad = [i for i in res["imgs"] if not (i["complete"] and i["w"] > 0 and i["shown"] > 0)]
    assert not bad, f"plots not decoded or not visible: {bad}"
    assert res["links"] > 10 and not res["broken"], f"links to missing anchors: {res['broken']}"
