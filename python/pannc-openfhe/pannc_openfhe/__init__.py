"""pannc_openfhe: run pannc's CKKS programs on OpenFHE.

- `pannc_openfhe.program`: packed programs (docs/packed-format.md, version 3): load and validate.
- `pannc_openfhe.plain`: their plaintext semantics (numpy only).
- `pannc_openfhe.ckks`: their encrypted execution on OpenFHE (BSGS linear maps with hoisted
  rotations, polynomials, real bootstrapping).
- `pannc_openfhe.circuit`: slot-per-sample circuits (docs/circuit-format.md, versions 1-2).

Command line: `python -m pannc_openfhe {run,validate,circuit} ...`.
"""

__version__ = "0.1.0"
