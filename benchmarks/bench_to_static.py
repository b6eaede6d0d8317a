"""Training speed with `Global.to_static: True` (paddle.jit.to_static) against dygraph, same model and batches.

    python benchmarks/bench_to_static.py                        # PPLCNet_x0_5, batch 32, 64x64, 30 steps
    python benchmarks/bench_to_static.py --model ResNet18 --size 112 --steps 20

Builds the model through the engine's own `to_static` (pcls.engine.components), times optimizer steps after
a warm-up (the first static step traces the graph) and prints images/s of both and the ratio. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import time


def _images_per_s(model, optimizer, batch, labels, steps, warmup):
    import paddle.nn.functional as F

    for i in range(warmup + steps):
        if i == warmup:
            started = time.perf_counter()
        loss = F.cross_entropy(model(batch), labels)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    float(loss)  # wait for the last step
    return steps * batch.shape[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="PPLCNet_x0_5")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    import paddle

    import pcls
    from pcls.engine.components import to_static

    paddle.set_device("cpu")
    rates = {}
    for mode in ("dygraph", "to_static"):
        paddle.seed(0)
        model = pcls.create_model(args.model, class_num=10)
        if mode == "to_static":
            model = to_static(model)
        model.train()
        optimizer = paddle.optimizer.Momentum(0.01, parameters=model.parameters())
        batch = paddle.rand([args.batch, 3, args.size, args.size])
        labels = paddle.randint(0, 10, [args.batch])
        rates[mode] = _images_per_s(model, optimizer, batch, labels, args.steps, args.warmup)
    print(f"machine: {os.cpu_count()} cores; {args.model}, batch {args.batch}, {args.size}x{args.size}, "
          f"{args.steps} timed steps")
    for mode, rate in rates.items():
        print(f"  {mode:10s} {rate:8.1f} images/s")
    print(f"  to_static / dygraph: {rates['to_static'] / rates['dygraph']:.2f}x")


if __name__ == "__main__":
    main()
