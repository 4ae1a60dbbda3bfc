"""The run report, opened in a real headless Chromium (Debian package chromium): the targets table, the stage
timeline, the plots and a 3D view per structure render offline, with no console message and no network request.

Each check is also run on a copy of the report with the defect it guards against (a console error, requests to
the network, empty 3D views), which it must find."""

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import debian_binary
from foldflow import report

pytestmark = [pytest.mark.slow, pytest.mark.ray]

TARGETS = ("HG003686_698", "HG003690_137", "HG003690_101", "short")
# Every host name is unresolvable, so nothing leaves the machine; the net log records each request all the same.
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                  "--enable-unsafe-swiftshader", "--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0",
                  "--no-first-run", "--disable-background-networking", "--host-resolver-rules=MAP * ~NOTFOUND"]
# The net log's initiator of the requests Chromium makes for itself (updates, accounts), not for a page.
BROWSER_INITIATOR = "not an origin"
# Test code appended to a copy of the report: once the page has loaded, each 3D view's canvas is drawn into a
# 2D canvas and its pixels counted (painted: not the colour of the first pixel, the background), onto the DOM.
PIXEL_PROBE = """<script>window.addEventListener('load', () => setTimeout(() => {
  document.querySelectorAll('div.structure canvas').forEach(canvas => {
    const copy = document.createElement('canvas');
    copy.width = canvas.width; copy.height = canvas.height;
    const context = copy.getContext('2d');
    context.drawImage(canvas, 0, 0);
    const rgba = new Uint32Array(context.getImageData(0, 0, copy.width, copy.height).data.buffer);
    const painted = rgba.filter(pixel => pixel !== rgba[0]).length;
    Object.assign(canvas.dataset, {pixels: rgba.length, painted, colours: new Set(rgba).size});
  });
}, 1000));</script>"""
DEFECTS = """<script>console.error('a defect'); fetch('http://api.example.org/data').catch(() => {});</script>
<img alt="from the network" src="https://cdn.example.org/logo.png">"""


@dataclass
class Opened:
    """A page as Chromium left it: its DOM after the scripts ran, its console lines and its network requests."""

    dom: str
    console: list[str]
    requests: list[str]


def open_in_chromium(page: Path, folder: Path) -> Opened:
    """``page`` opened in headless Chromium with a fresh profile and a net log, both in ``folder``."""
    net_log = folder / "net-log.json"
    dumped = subprocess.run([debian_binary("chromium", "chromium"), *CHROMIUM_FLAGS, f"--user-data-dir={folder}",
                             f"--log-net-log={net_log}", "--dump-dom", page.as_uri()],
                            capture_output=True, text=True, timeout=180)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]  # errors, warnings, logs alike
    return Opened(dumped.stdout, console, page_requests(net_log))


def page_requests(net_log: Path) -> list[str]:
    """The http(s) URLs a page (not the browser for itself) asked for, from Chromium's net log."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    starts = [e["params"] for e in log["events"] if e["type"] == start and "url" in e.get("params", {})]
    return [p["url"] for p in starts if p["url"].startswith(("http:", "https:"))
            and p.get("initiator") != BROWSER_INITIATOR]


def with_probe(path: Path, name: str, change=lambda html: html) -> Path:
    """A copy of the report at ``path``, changed by ``change``, with the pixel probe appended."""
    copy = path.with_name(name)
    copy.write_text(change(path.read_text()).replace("</body>", PIXEL_PROBE + "</body>"))
    return copy


def canvases(dom: str) -> list[dict[str, int]]:
    """Each 3D view's canvas: its pixels, painted pixels and colours, as the probe counted them."""
    return [{k: int(v) for k, v in re.findall(r'data-(pixels|painted|colours)="(\d+)"', tag)}
            for tag in re.findall(r"<canvas[^>]*>", dom)]


@pytest.fixture(scope="module")
def report_path(four_targets_run, tmp_path_factory) -> Path:
    store = four_targets_run.out_dir.parent / "store"
    return report(four_targets_run.run_id, str(store), tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture(scope="module")
def opened(report_path, tmp_path_factory) -> Opened:
    """The report of the four-target run, with the pixel probe, as Chromium left it."""
    return open_in_chromium(with_probe(report_path, "probed.html"), tmp_path_factory.mktemp("chromium"))


def test_report_is_one_file_with_its_images(report_path):
    text = report_path.read_text()
    assert text.count('src="data:image/png;base64,') >= 1 + 4 * 3  # the timeline, three plots per target


def test_report_renders_offline_without_console_messages(opened):
    assert opened.requests == [], "the report asked the network"
    assert opened.console == [], opened.console


def test_targets_table_and_3d_views_render_in_chromium(opened):
    table = re.search(r'<table class="sortable" id="targets">.*?</table>', opened.dom, flags=re.S).group(0)
    rows = re.findall(r"<tr[ >]", table.split("<tbody>")[1])
    assert len(rows) == 4
    for target in TARGETS:
        assert f"<td>{target}</td>" in table
    views = re.findall(r'<div class="structure"[^>]*data-atoms="(\d+)"[^>]*>(.*?)</div>', opened.dom, flags=re.S)
    # each view: 3Dmol.js drew the structure's atoms on a WebGL canvas (no "WebGL appears to be disabled" note)
    assert len(views) == 4 and all(int(atoms) > 100 and "<canvas" in inner and "WebGL" not in inner
                                   for atoms, inner in views), views
    # ... and its pixels show it: lit, shaded shapes (a cartoon, or spheres for residues it cannot join) in many
    # shades, where an empty view is one colour
    drawn = canvases(opened.dom)
    assert len(drawn) == 4 and all(c["painted"] > 0.002 * c["pixels"] and c["colours"] > 100 for c in drawn), drawn


def test_each_check_finds_its_defect(report_path, tmp_path):
    """The same checks on a copy of the report with empty structures, a console error and network requests."""
    def defective(html: str) -> str:
        html = re.sub(r'(<script type="text/plain" id="pdb-\d+">).*?(</script>)', r"\1\2", html, flags=re.S)
        return html.replace("</body>", DEFECTS + "</body>")

    broken = open_in_chromium(with_probe(report_path, "defective.html", defective), tmp_path)
    assert len(broken.console) == 1 and '"a defect"' in broken.console[0], broken.console
    assert sorted(broken.requests) == ["http://api.example.org/data", "https://cdn.example.org/logo.png"]
    drawn = canvases(broken.dom)
    assert len(drawn) == 4 and all(c["painted"] == 0 and c["colours"] == 1 for c in drawn), drawn
