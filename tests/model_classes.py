"""Model classes the model-flavor tests save by class path: importable as ``model_classes``
because pytest puts this folder (it has no ``__init__.py``) on ``sys.path``."""

from __future__ import annotations

import torch


class TinyNet(torch.nn.Module):
    """A two-layer network whose shape comes from its keyword arguments."""

    def __init__(self, n_in: int = 4, n_hidden: int = 8, n_out: int = 3):
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, n_hidden)
        self.out = torch.nn.Linear(n_hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x)))
