"""Training: the book's loop (:mod:`~tinygrad_sgd.train.loop`: :func:`fit`, :class:`History`,
:func:`build_network`) and a whole run with checkpoints, resume and plots
(:mod:`~tinygrad_sgd.train.run`: :func:`train`, :class:`TrainConfig`); the ``train`` command's
options are in :mod:`tinygrad_sgd.cli.train`.
"""

from .loop import (
    ACTIVATIONS,
    COSTS,
    INITS,
    OUTPUTS,
    PAIRS,
    History,
    NoImprovement,
    PlateauSchedule,
    build_network,
    evaluate,
    fit,
    gradient_speeds,
    plateau_patience,
)
from .run import (
    DATASETS,
    PRESETS,
    Preset,
    TrainConfig,
    load_checkpoint,
    plot_history,
    train,
    write_history_json,
)

__all__ = [
    "ACTIVATIONS",
    "COSTS",
    "DATASETS",
    "INITS",
    "OUTPUTS",
    "PAIRS",
    "PRESETS",
    "History",
    "NoImprovement",
    "PlateauSchedule",
    "Preset",
    "TrainConfig",
    "build_network",
    "evaluate",
    "fit",
    "gradient_speeds",
    "load_checkpoint",
    "plateau_patience",
    "plot_history",
    "train",
    "write_history_json",
]
