"""nbtrack-widgets: inline notebook widgets for nbtrack runs.

One module per widget; each renders as a live widget in JupyterLab, Notebook 7 and VS Code, and
as static HTML elsewhere.
"""

from ._version import __version__
from .curves import MetricCurves, curves

__all__ = ["MetricCurves", "__version__", "curves"]
