"""Sphinx configuration of eg's documentation.

The source directory is the repository's root, so the README files (the project's and each
plugin's) are pages of the site and their links to each other resolve. Build it at the top of
the checkout, in a virtualenv with eg-core and the ``test`` extra installed (``pip install -c
constraints.txt -e ".[test]"``: Sphinx, MyST, sphinxcontrib-openapi), with
``sphinx-build -W -c docs . <output>`` (``tests/test_docs.py`` does, warnings as errors); open
``<output>/index.html``. pytest is not needed: the pages documenting ``eg_core.testing`` (a pytest
plugin) build with it mocked.
"""

project = "eg"
author = "eg contributors"
root_doc = "docs/index"
include_patterns = ["README.md", "docs/**", "plugins/*/README.md"]
exclude_patterns = ["**/_build/**", ".venv/**", "**/node_modules/**"]

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinxcontrib.openapi"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_mock_imports = ["pytest"]  # eg_core.testing imports it; the docs build without it
html_extra_path = ["_root"]  # index.html at the top of the output, leading to docs/index.html
autodoc_typehints = "signature"


html_theme = "alabaster"
html_title = "eg — a pluggable Jupyter kernel gateway"
