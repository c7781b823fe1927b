"""Run the user path of the book's network (DataLoader in order, nn.Sequential of nn.Linear and
nn.Sigmoid, nn.functional.quadratic_cost, optim.SGD) over N samples at batch size m, after one
warm-up pass, and print the median µs per step of five passes.

    python benchmarks/user_step.py M DTYPE N        e.g. 10 float32 5000

The batches are passed as ``Tensor.from_numpy(xb)`` (shared, as ``fit`` does), or with
``USER_STEP_BATCH=copy`` as ``Tensor(xb)`` (a copy, as the README's loop writes it).

``instructions.sh`` runs it under callgrind to count instructions per step, which, unlike time,
does not depend on what else the machine is doing.
"""

import os
import sys
import time

import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn, optim

m, dtype, N = int(sys.argv[1]), np.dtype(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.random((N, 784)).astype(dtype)
Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, N)]
net = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10), nn.Sigmoid())
for p in net.parameters():
    p.data = p.data.astype(dtype)
opt = optim.SGD(net.parameters(), lr=3.0)
loader = tg.data.DataLoader(X, Y, batch_size=m, shuffle=False)
share = getattr(Tensor, "from_numpy", Tensor)  # (commits before Tensor.from_numpy: a copy)
if os.environ.get("USER_STEP_BATCH") == "copy":
    share = Tensor


def epoch() -> None:
    for xb, yb in loader:
        opt.zero_grad()
        cost = nn.F.quadratic_cost(net(share(xb)), share(yb))
        cost.backward()
        opt.step()


epoch()
times = []
for _ in range(5):
    t0 = time.perf_counter()
    epoch()
    times.append(time.perf_counter() - t0)
print(f"{sorted(times)[2] / len(loader) * 1e6:.1f}")
