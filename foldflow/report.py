"""One self-contained HTML report of a run (``foldflow report RUN``): it opens offline, from a file.

It shows the run's settings, a sortable table of the targets (scores, status, seconds per stage, computed or
from the store), the failures with their reasons, the stage timeline (which target was in which stage when:
the overlap of MSA search and model work) and, per target, its plots and an interactive 3D view of the best
structure coloured by pLDDT. Images are inlined as data URIs and the 3D viewer's JavaScript (3Dmol.js, from
the installed package that carries it) is inlined too: no network is needed to read the report.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from foldflow.results import REPORT_COLUMNS
from foldflow.viewer import three_dmol_js

# The timeline's colours, one per stage in the order the summary's started_<stage> columns give them (the
# workflow's: :attr:`foldflow.flow.workflow.Workflow.labels`).
STAGE_PALETTE = ["#4c72b0", "#8172b3", "#64b5cd", "#dd8452", "#55a868", "#937860", "#da8bc3", "#8c8c8c"]
# AlphaFold's pLDDT colours: > 90 dark blue, 70-90 light blue, 50-70 yellow, < 50 orange.
PLDDT_COLOURS_JS = """function plddtColour(atom) {
  const b = atom.b;
  return b > 90 ? '#0053d6' : b > 70 ? '#65cbf3' : b > 50 ? '#ffdb13' : '#ff7d45';
}"""
SORT_JS = """document.querySelectorAll('table.sortable th').forEach((th, column) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const ascending = th.dataset.order !== 'asc';
  th.dataset.order = ascending ? 'asc' : 'desc';
  const value = row => { const text = row.cells[column].textContent.trim(); const n = parseFloat(text);
                         return isNaN(n) ? text : n; };
  [...body.rows].sort((a, b) => { const x = value(a), y = value(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1); }).forEach(row => body.appendChild(row));
}));"""
# The cartoon joins residues whose CA atoms are a peptide bond apart; a residue joined to neither neighbour (all of
# them in structures from random parameters, CA atoms tens of Å apart) is drawn as a sphere, else the view is empty.
VIEWER_JS = """function unjoinedResidues(model) {
  const cas = model.selectedAtoms({atom: 'CA'});
  const joined = (a, b) => b !== undefined && a.chain === b.chain && Math.hypot(a.x - b.x, a.y - b.y, a.z - b.z) < 4.2;
  return new Set(cas.filter((ca, i) => !joined(ca, cas[i - 1]) && !joined(ca, cas[i + 1])).map(ca => ca.serial));
}
document.querySelectorAll('div.structure').forEach(element => {
  const viewer = $3Dmol.createViewer(element, {backgroundColor: 'white'});
  const model = viewer.addModel(document.getElementById(element.dataset.pdb).textContent, 'pdb');
  const unjoined = unjoinedResidues(model);
  viewer.setStyle({}, {cartoon: {colorfunc: plddtColour}});
  viewer.addStyle({predicate: atom => unjoined.has(atom.serial)}, {sphere: {radius: 1.5, colorfunc: plddtColour}});
  viewer.zoomTo();
  viewer.render();
  element.dataset.atoms = viewer.getModel().selectedAtoms({}).length;  // what was drawn, for tests
});"""
STYLE = """body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; } th, td { border: 1px solid #ccc; padding: 3px 6px; }
th { background: #eee; cursor: pointer; } tr.failed td { background: #fde2e2; }
.warning { background: #fff3cd; padding: 0.5em; border: 1px solid #e0c36c; }
div.structure { width: 480px; height: 360px; position: relative; border: 1px solid #ccc; }
.plots img { max-width: 480px; margin-right: 1em; } pre { background: #f6f6f6; padding: 0.5em; }"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.2f}"
    return html.escape(str(value))


def timeline_png(table: pd.DataFrame) -> bytes | None:
    """The stage timeline as a Gantt chart: one row per target, one bar per stage it went through."""
    stages = [column.removeprefix("started_") for column in table.columns if column.startswith("started_")]
    colours = dict(zip(stages, STAGE_PALETTE * (len(stages) // len(STAGE_PALETTE) + 1)))
    spans = [(row.target_id, stage, row[f"started_{stage}"], row[f"ended_{stage}"])
             for _, row in table.iterrows() for stage in stages if pd.notna(row.get(f"started_{stage}"))]
    if not spans:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    start = min(s[2] for s in spans)
    targets = list(dict.fromkeys(s[0] for s in spans))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(targets) + 1.2))
    for target, stage, began, ended in spans:
        ax.broken_barh([(began - start, max(ended - began, 0.05))], (targets.index(target) - 0.4, 0.8),
                       color=colours[stage])
    ax.set(yticks=range(len(targets)), yticklabels=targets, xlabel="seconds since the run's first step",
           title="Stage timeline")
    ax.invert_yaxis()
    used = {s[1] for s in spans}
    ax.legend(handles=[matplotlib.patches.Patch(color=c, label=s) for s, c in colours.items() if s in used],
              fontsize="small", loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _targets_table(table: pd.DataFrame) -> str:
    columns = [c for c in REPORT_COLUMNS if c in table] + sorted(c for c in table if c.startswith("seconds_"))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for _, row in table.iterrows():
        css = "" if row["status"] == "ok" else ' class="failed"'
        cells = "".join(f"<td>{_cell(row[c])}</td>" for c in columns)
        rows.append(f"<tr{css}>{cells}</tr>")
    return f'<table class="sortable" id="targets"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _target_section(row: pd.Series, index: int) -> str:
    folder = Path(row["output_dir"]) if isinstance(row.get("output_dir"), str) else None
    if row["status"] != "ok" or folder is None or not folder.is_dir():
        return ""
    plots = "".join(f'<img alt="{html.escape(name)}" src="{_data_uri((folder / name).read_bytes())}">'
                    for name in (row.get("plots") if row.get("plots") is not None else [])
                    if (folder / name).is_file())
    pdb = (folder / "ranked_0.pdb").read_text() if (folder / "ranked_0.pdb").is_file() else ""
    title = html.escape(str(row["target_id"]))
    return (f'<section class="target"><h3>{title}</h3>'
            f'<p>best: {html.escape(str(row["model"]))}, mean pLDDT {_cell(row["mean_plddt"])}</p>'
            f'<div class="plots">{plots}</div>'
            f'<div class="structure" id="view-{index}" data-pdb="pdb-{index}"></div>'
            f'<script type="text/plain" id="pdb-{index}">{html.escape(pdb)}</script></section>')


def render_report(out_dir: Path, status: dict) -> str:
    """The report's HTML for the run whose outputs are in ``out_dir`` (``status``: :func:`foldflow.run_status`)."""
    table = pq.read_table(out_dir / "summary.parquet").to_pandas() if (out_dir / "summary.parquet").is_file() \
        else pd.DataFrame(columns=["target_id", "status"])
    settings = (out_dir / "config.yaml").read_text() if (out_dir / "config.yaml").is_file() else ""
    random_params = any((out_dir / str(t)).joinpath("RANDOM_PARAMETERS_NOT_MEANINGFUL.txt").is_file()
                        for t in table["target_id"])
    timeline = timeline_png(table)
    failures = {**status.get("failures", {}),
                **{r.target_id: r.error for r in table.itertuples() if r.status != "ok"}}
    parts = [
        f"<h1>foldflow run {html.escape(status['run_id'])}</h1>",
        f"<p>state: <b>{html.escape(status['state'])}</b>; {len(table)} targets "
        f"({int((table['status'] == 'ok').sum())} ok, {len(failures)} failed or invalid); outputs: "
        f"{html.escape(str(out_dir))}</p>",
        '<p class="warning">Predicted with RANDOM parameters: these structures and scores are NOT '
        'meaningful.</p>' if random_params else "",
        "<h2>Targets</h2><p>Click a column to sort.</p>", _targets_table(table),
        "<h2>Failures</h2>" + ("<ul>" + "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(str(e))}</li>"
                                                 for t, e in sorted(failures.items())) + "</ul>"
                               if failures else "<p>none</p>"),
        "<h2>Stage timeline</h2>" + (f'<img alt="stage timeline" src="{_data_uri(timeline)}">' if timeline
                                     else "<p>no stage times recorded</p>"),
        "<h2>Structures</h2>", *(_target_section(row, i) for i, row in table.iterrows()),
        f"<h2>Settings</h2><pre>{html.escape(settings)}</pre>",
    ]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>foldflow run "
            f"{html.escape(status['run_id'])}</title><style>{STYLE}</style>"
            f"<script>{three_dmol_js()}</script></head><body>{''.join(parts)}"
            f"<script>{PLDDT_COLOURS_JS}\n{SORT_JS}\n{VIEWER_JS}</script>"
            f"<script type='application/json' id='run-status'>{html.escape(json.dumps(status, default=str))}"
            f"</script></body></html>")


def write_report(out_dir: Path, status: dict, path: Path | None = None) -> Path:
    """Write the report (default ``<out_dir>/report.html``) and return its path."""
    path = Path(path) if path else Path(out_dir) / "report.html"
    path.write_text(render_report(Path(out_dir), status))
    return path
