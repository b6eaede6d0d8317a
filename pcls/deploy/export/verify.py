"""The export's self-check: the exported model, run by Paddle Inference (and ONNX Runtime for ONNX), must
reproduce the dygraph model's probabilities on a random batch; weights that are not finite are named first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcls.errors import PclsError

# Relative to the largest probability: for softmax outputs this is about the absolute error of the logits.
VERIFY_RTOL = {"fp32": 5e-4, "fp16": 5e-2}


def check_finite_weights(model, weights) -> None:
    """Refuse weights holding NaN or Inf, naming the tensors (verification would only say "differs by nan")."""
    bad = [name for name, tensor in model.state_dict().items()
           if np.issubdtype(np.asarray(tensor.numpy()).dtype, np.floating) and not np.isfinite(tensor.numpy()).all()]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise PclsError(f"the weights {weights or '(random init)'} hold NaN or Inf values in {len(bad)} tensor(s): "
                        f"{shown}; the run that wrote them diverged — export an earlier checkpoint")


def relative_diff(got, expected) -> float:
    """max |got - expected| / max |expected| (relative difference of the outputs)."""
    got = np.asarray(got, dtype=np.float32)
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max() / max(float(np.abs(expected).max()), 1e-12))


def check(diff: float, precision: str, runtime: str) -> None:
    if not np.isfinite(diff) or diff > VERIFY_RTOL[precision]:
        raise PclsError(f"export verification failed: {runtime} output differs from the dygraph model by "
                        f"{diff:.3g} relative (tolerance {VERIFY_RTOL[precision]}); the export was not written")


def run_paddle_inference(model_dir: Path, batch: np.ndarray) -> np.ndarray:
    from pcls.deploy.runtimes import RuntimeSettings, paddle_runner

    return paddle_runner(model_dir, RuntimeSettings(device="cpu", threads=2))(batch)


def run_onnx(model_dir: Path, batch: np.ndarray) -> np.ndarray:
    from pcls.deploy.runtimes import RuntimeSettings, onnx_runner

    return onnx_runner(model_dir, RuntimeSettings(device="cpu", threads=2, runtime="onnx"))(batch)
