"""Optimizers (:class:`SGD`) and learning-rate schedules (:mod:`.lr_scheduler`).

The book's training step::

    opt = optim.SGD(net.parameters(), lr=3.0)     # η = 3.0
    opt.zero_grad()
    nn.F.quadratic_cost(net(x), y).backward()     # ∂C/∂w for the mini-batch mean cost
    opt.step()                                    # w → w − η ∂C/∂w
"""

from . import lr_scheduler
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Optimizer", "lr_scheduler"]
