"""examples/quickstart.ipynb executed top to bottom in a real Jupyter kernel (nbclient), as a user runs it."""

import nbformat
import pyarrow.parquet as pq
import pytest
from nbclient import NotebookClient

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_quickstart_notebook_runs_and_shows_table_plots_and_report(tmp_path):
    notebook = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    followed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "run id:" in followed and "finished, 100%" in followed, followed
    table = pq.read_table(tmp_path / "quickstart-out" / "summary.parquet").to_pandas()
    assert len(table) == 2 and (table["status"] == "ok").all()
    shown = [o for o in outputs if o.output_type in ("display_data", "execute_result")]
    assert sum("image/png" in o.data for o in shown) == 3, "the three plots of a target"
    assert any("text/html" in o.data and "<table" in o.data["text/html"] for o in shown), "the summary table"
    assert any("3dmol" in o.data.get("text/html", "").lower() for o in shown), "the py3Dmol view"
    assert (tmp_path / "quickstart-out" / "report.html").is_file()
