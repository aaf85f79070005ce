"""``hybridflow report``: a self-contained HTML report of a batch run's outputs,
opened in headless Chromium (Debian package): the plots render, nothing is
fetched, no console errors."""

import glob
import io
import json
import re
import subprocess

import pytest

FIGURES = ["Alerts over time", "Top cards by spend", "Window aggregates"]
# per figure: its box on the page and how many marks (bars, lines) its SVG drew
SCRIPT = """
Array.from(document.querySelectorAll('figure.plot')).map(f => {
  const box = f.querySelector('svg').getBoundingClientRect();
  return {title: f.closest('section').querySelector('h2').textContent,
          x: box.x + window.scrollX, y: box.y + window.scrollY, width: box.width, height: box.height,
          marks: f.querySelectorAll('svg path, svg rect, svg polyline').length};
})
"""


def _run_fraud(cmd, out, *flags):
    proc = subprocess.run([*cmd, "run", "fraud", "--mode=batch", "--runner=FnApiRunner",
                           "--input=synthetic://transactions?count=3000&seed=42&population=42&cards=200",
                           f"--output={out}", *flags], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _report(cmd, directory, out, *flags):
    proc = subprocess.run([*cmd, "report", "fraud", f"--input={directory}", f"--out={out}", *flags],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out.read_text()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import sys

    cmd = [sys.executable, "-m", "hybridflow"]
    base = tmp_path_factory.mktemp("report")
    out = base / "out"
    _run_fraud(cmd, out, f"--metrics-json={out}/metrics.json")
    return out, base / "report.html", _report(cmd, out, base / "report.html")


def test_the_report_is_one_self_contained_file_with_the_run_numbers(report):
    out, _, html = report
    assert html.count("<svg") == len(FIGURES)
    for title in FIGURES + ["Job", "Counts", "Latest alerts"]:
        assert f"<h2>{title}</h2>" in html
    assert "<script" not in html and not re.search(r'(src|href)="(?!#)', html)  # nothing to fetch
    alerts = [json.loads(line) for path in glob.glob(f"{out}/alerts*.jsonl") for line in open(path)]
    dead = [json.loads(line) for path in glob.glob(f"{out}/dead_letters*.jsonl") for line in open(path)]
    assert f"{len(alerts)} alerts by event time" in html
    assert f"<td>dead letters</td><td>{len(dead)}</td>" in html
    assert "<span>state</span><b>DONE</b>" in html and "<span>records read</span><b>3,000</b>" in html
    assert "<span>deadline exceeded</span><b>no</b>" in html


def test_the_report_reads_parquet_outputs(hybridflow_cmd, tmp_path):
    out = tmp_path / "out"
    _run_fraud(hybridflow_cmd, out, "--output_format=parquet")
    assert glob.glob(f"{out}/alerts*.parquet") and not glob.glob(f"{out}/alerts*.jsonl")
    html = _report(hybridflow_cmd, out, tmp_path / "report.html")
    assert html.count("<svg") == len(FIGURES) and "<h2>Job</h2>" not in html  # no metrics.json


def test_report_usage_errors(hybridflow_cmd, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    (tmp_path / "unpublished").mkdir()
    (tmp_path / "unpublished" / "alerts-00000-of-00001.jsonl").write_text("{}\n")  # no _SUCCESS: not a run's output
    for args, message in (
        (["nosuch", f"--input={tmp_path}"], "unknown pipeline 'nosuch'"),
        (["fraud", f"--input={tmp_path}/missing"], "holds no published run (no readable _SUCCESS)"),
        (["fraud", f"--input={tmp_path}/empty"], "holds no published run"),
        (["fraud", f"--input={tmp_path}/unpublished"], "holds no published run"),
    ):
        proc = subprocess.run([*hybridflow_cmd, "report", *args, f"--out={tmp_path}/r.html"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def _non_white(image) -> float:
    pixels = list(image.convert("L").getdata())
    return sum(p < 245 for p in pixels) / len(pixels)


@pytest.mark.services
def test_the_report_renders_in_headless_chromium(report, chromium):
    from PIL import Image

    _, path, _ = report
    page = chromium.open(path.as_uri(), SCRIPT)
    assert page["errors"] == []
    assert set(page["requests"]) == {path.as_uri()}  # the page itself, nothing else
    figures = page["value"]
    assert [f["title"] for f in figures] == FIGURES
    shot = Image.open(io.BytesIO(page["png"]))
    assert shot.width >= 1000 and shot.height > sum(f["height"] for f in figures)
    assert _non_white(shot) > 0.03
    for f in figures:
        assert f["width"] > 600 and f["height"] > 200 and f["marks"] > 20, f
        crop = shot.crop((int(f["x"]), int(f["y"]), int(f["x"] + f["width"]), int(f["y"] + f["height"])))
        colours = crop.convert("RGB").getcolors(maxcolors=1 << 16) or []
        assert _non_white(crop) > 0.02 and len(colours) > 8, f  # axes, bars, lines, text: not blank
