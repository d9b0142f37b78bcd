"""``nbtrack.pytorch``: log and load PyTorch modules, autolog PyTorch Lightning, and log a plain
training loop in one line (MLflow's ``mlflow.pytorch``).

- :func:`log_model`, :func:`save_model`, :func:`load_model`: see
  :mod:`nbtrack.models.flavors.pytorch` for the two serialization formats (``pickle``, which runs
  code as it loads, and the safer ``state_dict``);
- :func:`autolog`: record every Lightning ``Trainer.fit`` (as ``mlflow.pytorch.autolog``), and
  ``NbtrackLogger``, a Lightning logger: see :mod:`nbtrack.autologging.lightning`;
- :func:`log_step`: ``nbtrack.pytorch.log_step(loss)`` in a plain loop logs the loss at steps
  0, 1, 2, ... without a GPU sync each step: see :mod:`nbtrack.autologging.torch_loop`.
"""

from typing import TYPE_CHECKING, Any

from .autologging.torch_loop import flush_steps, log_step
from .models.flavors.pytorch import FORMATS, autolog, load_model, log_model, save_model

if TYPE_CHECKING:
    from .autologging.lightning import NbtrackLogger

__all__ = ["FORMATS", "NbtrackLogger", "autolog", "flush_steps", "load_model", "log_model",
           "log_step", "save_model"]


def __getattr__(name: str) -> Any:
    if name == "NbtrackLogger":  # built on first use: importing nbtrack never imports Lightning
        from .autologging.lightning import logger_class

        return logger_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
