"""Model size and compute: trainable parameters and multiply-accumulates of a freshly built backbone at
its catalog input size (the zoo's "FLOPs" column is 2 x MACs)."""

from __future__ import annotations

import contextlib
import io


def count_trainable(model) -> int:
    return int(sum(int(p.numel()) for p in model.parameters() if not p.stop_gradient))


def measure(name: str, input_size: int | None = None, **model_kwargs) -> dict:
    """{"params": trainable parameter count, "macs": multiply-accumulates for one image} of model `name`
    at `input_size` (default: the catalog's input size for it)."""
    import paddle

    from pcls.arch.registry import create_model
    from pcls.zoo.catalog import preprocess_for

    size = input_size or preprocess_for(name)["input_size"]
    model = create_model(name, **model_kwargs)
    model.eval()
    # paddle.flops prints a per-layer-type summary even with print_detail=False; keep stdout clean
    with contextlib.redirect_stdout(io.StringIO()):
        macs = paddle.flops(model, [1, 3, size, size], print_detail=False)
    return {"params": count_trainable(model), "macs": int(macs)}
