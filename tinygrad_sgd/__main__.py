"""``python -m tinygrad_sgd``: see :mod:`tinygrad_sgd.cli`."""

import sys

from .cli import main

sys.exit(main())
