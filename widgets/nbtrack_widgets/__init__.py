"""nbtrack-widgets: inline notebook widgets for nbtrack runs.

One module per widget; each renders as a live widget in JupyterLab, Notebook 7 and VS Code, and
as static HTML elsewhere.
"""

from ._version import __version__
from .compare import Comparison, compare
from .curves import MetricCurves, curves
from .detail import RunDetail, show
from .params import ParamsView, params_view
from .registry import RegistryControls, registry
from .table import RunTable

__all__ = [
    "Comparison",
    "MetricCurves",
    "ParamsView",
    "RegistryControls",
    "RunDetail",
    "RunTable",
    "__version__",
    "compare",
    "curves",
    "params_view",
    "registry",
    "show",
]
