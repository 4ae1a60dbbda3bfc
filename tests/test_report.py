"""The run report, opened in a real headless Chromium (Debian package chromium): the targets table, the stage
timeline, the plots and a 3D view per structure render offline, with no console errors."""

import re
import subprocess

import pytest

from conftest import debian_binary
from foldflow import report

pytestmark = [pytest.mark.slow, pytest.mark.ray]

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-angle=swiftshader",
                  "--enable-unsafe-swiftshader", "--allow-file-access-from-files", "--virtual-time-budget=20000",
                  "--enable-logging=stderr", "--v=0"]


@pytest.fixture(scope="module")
def opened(four_targets_run, tmp_path_factory):
    """The report of the four-target run, its DOM after the scripts ran, and Chromium's log."""
    store = four_targets_run.out_dir.parent / "store"
    path = report(four_targets_run.run_id, str(store), tmp_path_factory.mktemp("report") / "report.html")
    chromium = debian_binary("chromium", "chromium")
    dumped = subprocess.run([chromium, *CHROMIUM_FLAGS, "--dump-dom", path.as_uri()], capture_output=True,
                            text=True, timeout=180)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    screenshot = path.with_suffix(".png")
    shot = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--screenshot={screenshot}", "--window-size=1280,4000",
                           path.as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0, shot.stderr[-2000:]
    return path, dumped.stdout, dumped.stderr + shot.stderr, screenshot


def test_report_is_one_offline_file(opened):
    path, _, _, _ = opened
    text = path.read_text()
    markup = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)  # the HTML outside the inlined scripts
    assert not re.search(r"""<(script|link|img)[^>]*(src|href)=["']https?://""", text), "nothing from the network"
    assert not re.search(r"""(src|href)=["']https?://""", markup)
    assert text.count('src="data:image/png;base64,') >= 1 + 4 * 3  # the timeline, three plots per target


def test_targets_table_and_3d_views_render_in_chromium(opened):
    _, dom, log, screenshot = opened
    table = re.search(r'<table class="sortable" id="targets">.*?</table>', dom, flags=re.S).group(0)
    rows = re.findall(r"<tr[ >]", table.split("<tbody>")[1])
    assert len(rows) == 4
    for target in ("HG003686_698", "HG003690_137", "HG003690_101", "short"):
        assert f"<td>{target}</td>" in table
    views = re.findall(r'<div class="structure"[^>]*data-atoms="(\d+)"[^>]*>(.*?)</div>', dom, flags=re.S)
    # each view: 3Dmol.js drew the structure's atoms on a WebGL canvas (no "WebGL appears to be disabled" note)
    assert len(views) == 4 and all(int(atoms) > 100 and "<canvas" in inner and "WebGL" not in inner
                                   for atoms, inner in views), views
    console = [line for line in log.splitlines() if ":CONSOLE" in line]  # errors, warnings and logs alike
    assert not console, console
    assert screenshot.stat().st_size > 50_000
