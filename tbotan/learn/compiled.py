"""torch.compile for the model, falling back to eager where it cannot compile (``training.compile``).

    forward = compiled(net, "auto")        # "off": net itself; "on": a compile failure is an error
    out = forward(species, edges, features)

Inductor compiles on the first call (tens of seconds on a CPU) and needs a C++ compiler there; with
``dynamic=True`` graphs of other edge counts reuse the same kernels. Under "auto" a failure is logged once
and the run goes on eagerly; under "on" it raises ``TrainingError`` naming the cause. The compiled forward
computes the same function as the eager one to float tolerance (tests/learn/test_compiled.py).
"""

from __future__ import annotations

import logging

import torch

from ..errors import TrainingError

logger = logging.getLogger(__name__)
MODES = ("auto", "on", "off")


class _Guarded:
    """Calls the compiled module; on a compile error either raises (mode "on") or switches to eager for good."""

    def __init__(self, eager, mode: str):
        self.eager, self.mode = eager, mode
        self.fn = torch.compile(eager, dynamic=True)

    def __call__(self, *args):
        if self.fn is None:
            return self.eager(*args)
        try:
            return self.fn(*args)
        except Exception as e:  # inductor raises many types (BackendCompilerFailed, CalledProcessError, ...)
            cause = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            if self.mode == "on":
                raise TrainingError(
                    f"torch.compile failed ({cause}); set `training.compile: auto` to fall back to eager or `off`"
                ) from e
            logger.warning(f"torch.compile failed ({cause}); training eagerly (`training.compile: off` skips the try)")
            self.fn = None
            return self.eager(*args)


def compiled(module, mode: str):
    """A callable computing ``module(*args)`` (a module or a function, such as loss.pair_block): compiled (mode
    "auto" or "on") or ``module`` itself ("off")."""
    if mode not in MODES:
        raise TrainingError(f"unknown compile mode {mode!r} (one of {', '.join(MODES)})")
    return module if mode == "off" else _Guarded(module, mode)
