"""Sphinx configuration: the guide pages in Markdown (MyST), the command-line reference from the click commands,
the Python reference from the numpydoc docstrings.  Built warning-free in CI: ``sphinx-build -W docs docs/_build``."""

import apftools

project = "apftools"
author = "apftools developers"
release = version = apftools.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc", "sphinx_click"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
html_theme = "alabaster"
suppress_warnings = ["myst.xref_missing"]
