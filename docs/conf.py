"""Sphinx configuration of the documentation site: ``pip install -e '.[docs]'``, then
``sphinx-build -W --keep-going -n docs /tmp/site`` (what .ci/run does)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import tinygrad_sgd  # noqa: E402

project = "tinygrad_sgd"
author = "The tinygrad_sgd maintainers"
release = version = tinygrad_sgd.__version__
copyright = "the tinygrad_sgd maintainers (MIT)"

extensions = ["sphinx.ext.autodoc", "myst_parser", "tg_docs"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True  # `mirrors=MIRRORS`, not the tuple of URLs
autodoc_default_options = {"show-inheritance": True}

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# -n: every cross-reference must resolve, except to the libraries we do not document (no
# intersphinx: the build must not download their inventories).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|hypothesis|argparse|collections|typing|types|pathlib|os)\..*"),
]

html_theme = "alabaster"
html_title = f"tinygrad_sgd {release}"
