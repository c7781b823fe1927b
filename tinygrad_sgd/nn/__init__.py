"""Neural-network building blocks: ``Module``, layers, initialisers and costs.

The book's network ``[784, 30, 10]`` of sigmoid neurons, its quadratic cost and one gradient::

    from tinygrad_sgd import nn
    net = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10), nn.Sigmoid())
    cost = nn.F.quadratic_cost(net(x), y)     # C = 1/2n Σ ‖y − a‖²
    cost.backward()                           # ∂C/∂w, ∂C/∂b in every p.grad
"""

from . import functional, init
from . import functional as F
from .layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import IncompatibleKeys, Module, Parameter

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "F",
    "Flatten",
    "Identity",
    "IncompatibleKeys",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
]
