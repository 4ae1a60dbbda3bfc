"""The 3D structure viewer's JavaScript for offline HTML: 3Dmol.js as a maintained Python package carries it.

No PyPI or Debian package ships 3Dmol.js on its own (py3Dmol loads it from a CDN). chemiscope (BSD-3-Clause,
the COSMO lab's structure-property explorer) bundles 3Dmol.js 2.4 into its standalone script
``chemiscope/sphinx/static/chemiscope.min.js``, which defines the global ``$3Dmol`` when loaded; the report
inlines that file. It is found without importing chemiscope (whose import pulls in Jupyter widgets).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from foldflow.errors import SetupError

BUNDLE = Path("sphinx") / "static" / "chemiscope.min.js"


@cache
def three_dmol_js() -> str:
    """The script text that defines ``$3Dmol`` (3Dmol.js), for a ``<script>`` element."""
    spec = importlib.util.find_spec("chemiscope")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / BUNDLE
        if path.is_file():
            # a literal "</script>" inside the inlined code would end the element early
            return path.read_text(encoding="utf-8").replace("</script>", "<\\/script>")
    raise SetupError("the report's 3D viewer needs 3Dmol.js from the chemiscope package: pip install chemiscope")
