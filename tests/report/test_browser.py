"""report.html as a reader sees it: rendered by headless Chromium (Debian package `chromium`, installed
here with apt-get when missing; skipped with the reason when it cannot be), the findings section is
there, every embedded plot decoded and visible, and no in-page link points nowhere.

    .venv/bin/python -m pytest -q tests/report/test_browser.py
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from pipeline.report import markdown as report
from pipeline.schema import read_records

BASELINE = ROOT / "baselines" / "digits_cnn.jsonl"
# runs in the page after load: what the test asserts, written into the DOM that --dump-dom prints
CHECK = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,
                                               shown: i.getBoundingClientRect().width}));
  const links = [...document.querySelectorAll('a[href^="#"]')].map(a => a.getAttribute('href').slice(1));
  const broken = [...new Set(links.filter(id => !document.getElementById(decodeURIComponent(id))))];
  const f = document.getElementById('findings');
  const out = document.createElement('pre');
  out.id = 'mb-check';
  out.textContent = JSON.stringify({findings: !!f && f.tagName, findings_first:
      document.querySelector('h2') === f, imgs, links: links.length, broken});
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


def test_report_html_in_headless_chromium(tmp_path):
    exe = _chromium()
    report.write(read_records(BASELINE), tmp_path / "report.md")
    page = tmp_path / "check.html"
    page.write_text((tmp_path / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=180)
    m = re.search(r'<pre id="mb-check">(.*?)</pre>', p.stdout, re.S)
    assert m, f"chromium printed no check result (exit {p.returncode}): {p.stderr[-500:]}"
    res = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert res["findings"] == "H2" and res["findings_first"], res
    assert len(res["imgs"]) >= 5, res["imgs"]
    bad = [i for i in res["imgs"] if not (i["complete"] and i["w"] > 0 and i["shown"] > 0)]
    assert not bad, f"plots not decoded or not visible: {bad}"
    assert res["links"] > 10 and not res["broken"], f"links to missing anchors: {res['broken']}"
