"""Sphinx configuration of the skjule documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` (warnings are errors;
``tests/test_docs.py`` does exactly this). The gallery runs the ``plot_*.py``
examples; the others need the benchmark data and are shown, not run.
"""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))

import skjule  # noqa: E402

project = "skjule"
author = "skjule developers"
copyright = "2026, skjule developers"
version = release = skjule.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
numpydoc_show_class_members = False
# numpydoc validation, as scikit-learn: every check but the sections beyond a
# complete description (ES01 extended summary, SA01 See Also, EX01 Examples)
# and three style rules (SS05 infinitive verb, GL01 summary on the line after
# the quotes, RT02 returned values named). So under ``-W`` a missing, unknown or
# undescribed parameter (PR01, PR02, PR07) or return (RT01, RT03) fails the build.
numpydoc_validation_checks = {"all", "ES01", "SA01", "EX01", "SS05", "GL01", "RT02"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Deep image clustering, scikit-learn style"}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
}

# Headless build; a run's progress bars and torch's warnings are not docs.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", message=".*Matplotlib is currently using agg.*")


def _skip_metadata_routing(app, what, name, obj, skip, options):
    """scikit-learn generates set_*_request methods on every estimator; their
    docstrings point into scikit-learn's own glossary."""
    if name.startswith("set_") and name.endswith("_request") or name == "get_metadata_routing":
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_metadata_routing)
