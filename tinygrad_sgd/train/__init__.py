"""Training: the book's loop (:mod:`~tinygrad_sgd.train.loop`: :func:`fit`, :class:`History`,
:func:`build_network`) and a whole run with checkpoints, resume and plots
(:mod:`~tinygrad_sgd.train.run`: :func:`train`, :class:`TrainConfig`); the ``train`` command's
options are in :mod:`tinygrad_sgd.cli.train`.
"""

from .loop import COSTS, INITS, History, build_network, evaluate, fit
from .run import DATASETS, TrainConfig, load_checkpoint, plot_history, train

__all__ = [
    "COSTS",
    "DATASETS",
    "INITS",
    "History",
    "TrainConfig",
    "build_network",
    "evaluate",
    "fit",
    "load_checkpoint",
    "plot_history",
    "train",
]
