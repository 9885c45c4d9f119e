"""The precision a training computes in (``training.precision``), resolved against the hardware it runs on.

    precision = resolve_precision(spec.training.precision, device)    # "float32" or "bfloat16"
    if bf16_emulated(precision, device): warn                          # bf16 on a CPU without bf16 units

``bfloat16`` runs the forward pass under autocast (tbotan.learn.scoring.graph_terms); the loss and the optimiser
stay in float32. ``auto`` picks bfloat16 where the hardware multiplies it: a CUDA GPU that supports it, a CPU with
AVX512-BF16 or AMX (as oneDNN reports); float32 elsewhere. docs/training.md measures what each costs.
"""

from __future__ import annotations

import torch


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), as oneDNN reports it."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(asked: str, device: torch.device) -> str:
    """``training.precision``: "auto" is bfloat16 on a GPU that has it and on a CPU with bf16 hardware, else
    float32; the others are themselves."""
    if asked != "auto":
        return asked
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if device.type == "cpu" and cpu_has_bf16() else "float32"


def bf16_emulated(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` is bfloat16 on a CPU without bf16 hardware, where torch emulates it (slower than
    float32)."""
    return precision == "bfloat16" and device.type == "cpu" and not cpu_has_bf16()
