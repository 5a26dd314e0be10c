#!/usr/bin/env python3
"""Shim for the slot-per-sample circuit runner (docs/circuit-format.md, versions 1 and 2).

The runner moved into the `pannc_openfhe` package (python/pannc-openfhe, module
`pannc_openfhe.circuit`; `python -m pannc_openfhe circuit ...`). This file keeps the old
command line and `import openfhe_run` working; it runs the package from this checkout, so it
needs no installation beyond a Python with the `openfhe` wheel and numpy.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "pannc-openfhe"))

from pannc_openfhe.circuit import *  # noqa: E402,F401,F403
from pannc_openfhe.circuit import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
