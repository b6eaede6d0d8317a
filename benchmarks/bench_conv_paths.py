"""Candidate CPU convolution paths against Paddle's own kernel, one layer at a time, forward + backward (issue #29).

    python benchmarks/bench_conv_paths.py                    # 1x1 and depthwise shapes of ResNet/MobileNet stages
    python benchmarks/bench_conv_paths.py --threads 2 --rounds 5 --json

Paths, each timed on the same input, interleaved round by round (best round per path kept):
- 1x1: Paddle's conv2d (one product per image); `batched_conv2d` (NHWC transpose + one product over
  batch x pixels, the small-map path); `pointwise_conv2d` (one broadcast [out, in] x [N, in, H*W] product,
  `PCLS_GEMM_CONV_1X1=all`);
- depthwise: Paddle's conv2d in NCHW; Paddle's depthwise kernel in NHWC (two transposes added); a channels-last
  sum of k x k shifted multiply-adds over [N, H, W, C] (plain Paddle ops, autograd through them) -- the issue's
  vectorise-over-channels candidate, kept here only as a measurement; `split_grad_conv2d` (Paddle's forward
  kernel, its input gradient by the forward kernel, `PCLS_DEPTHWISE_GRAD=split`);
- `--onednn`: every path also with Paddle's oneDNN kernels (FLAGS_use_onednn).
Prints ms per forward+backward (CPU time by default: a busy machine's wait for a core is not counted) and each
path's speed-up over Paddle's kernel, with the load average beside it: on a shared machine compare the ratios of
one run, not absolute times. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POINTWISE = [(64, 256, 56), (256, 64, 56), (128, 512, 28), (512, 128, 28), (256, 1024, 14), (1024, 256, 14),
             (16, 16, 112), (96, 24, 56)]  # (in, out, side): ResNet50 bottlenecks and MobileNet expansions
DEPTHWISE = [(16, 3, 112), (64, 3, 56), (72, 3, 28), (96, 5, 14), (240, 5, 14)]  # (channels, kernel, side)


def shifted_depthwise_nhwc(x, weight, padding):
    """Depthwise conv as k*k shifted multiply-adds over a channels-last copy (stride 1)."""
    import paddle.nn.functional as F

    channels, k = x.shape[1], weight.shape[2]
    height, width = x.shape[2] + 2 * padding - k + 1, x.shape[3] + 2 * padding - k + 1
    padded = F.pad(x.transpose([0, 2, 3, 1]), [padding] * 4, data_format="NHWC")
    taps = weight.reshape([channels, k * k]).transpose([1, 0])
    out = None
    for i in range(k):
        for j in range(k):
            term = padded[:, i:i + height, j:j + width, :] * taps[i * k + j]
            out = term if out is None else out + term
    return out.transpose([0, 3, 1, 2])


def paths(kind: str):
    import paddle.nn.functional as F

    from pcls.arch.layers import gemm_conv as gc

    if kind == "1x1":
        return {"paddle": lambda x, w: F.conv2d(x, w),
                "batched (NHWC product)": lambda x, w: gc.batched_conv2d(x, w, None, 1, 0, 1),
                "pointwise (broadcast product)": lambda x, w: gc.pointwise_conv2d(x, w, None, 1)}
    return {"paddle": lambda x, w: F.conv2d(x, w, padding=w.shape[2] // 2, groups=x.shape[1]),
            "paddle NHWC kernel": lambda x, w: F.conv2d(x.transpose([0, 2, 3, 1]), w, padding=w.shape[2] // 2,
                                                        groups=x.shape[1], data_format="NHWC").transpose([0, 3, 1, 2]),
            "shifted FMA, channels last": lambda x, w: shifted_depthwise_nhwc(x, w, w.shape[2] // 2),
            "split gradient": lambda x, w: gc.split_grad_conv2d(x, w, (w.shape[2] // 2,) * 2, x.shape[1])}


def forward_backward_s(fn, x, w, clock=time.process_time) -> float:
    import paddle

    x.clear_gradient()
    w.clear_gradient()
    start = clock()
    out = fn(x, w)
    paddle.autograd.backward([out], [paddle.ones_like(out)])
    return clock() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default="1x1,depthwise")
    parser.add_argument("--onednn", action="store_true", help="also time every path with FLAGS_use_onednn on")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: this process's CPU time (robust on a shared machine at 1 thread; with more "
                             "threads it counts OpenMP spinning); wall: elapsed time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import paddle

    paddle.base.core.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    paddle.seed(0)
    rows = []
    for kind in [k for k in args.kinds.split(",") if k]:
        for shape in POINTWISE if kind == "1x1" else DEPTHWISE:
            if kind == "1x1":
                cin, cout, side = shape
                x, w = paddle.randn([args.batch_size, cin, side, side]), paddle.randn([cout, cin, 1, 1])
            else:
                channels, k, side = shape
                x, w = paddle.randn([args.batch_size, channels, side, side]), paddle.randn([channels, 1, k, k])
            x.stop_gradient = w.stop_gradient = False
            candidates = [(name, fn, onednn) for name, fn in paths(kind).items()
                          for onednn in ((False, True) if args.onednn else (False,))]
            best = {}
            for _ in range(args.rounds):
                for name, fn, onednn in candidates:
                    paddle.set_flags({"FLAGS_use_onednn": onednn})
                    label = name + (" +oneDNN" if onednn else "")
                    best[label] = min(best.get(label, float("inf")), forward_backward_s(fn, x, w, clock))
            paddle.set_flags({"FLAGS_use_onednn": False})
            row = {"kind": kind, "shape": list(shape), "batch_size": args.batch_size, "threads": args.threads,
                   "clock": args.clock,
                   "ms": {k: round(1000 * v, 1) for k, v in best.items()},
                   "speedup": {k: round(best["paddle"] / v, 2) for k, v in best.items()},
                   "load": " ".join(f"{v:.1f}" for v in os.getloadavg())}
            rows.append(row)
            if not args.json:
                print(f"{kind:<9} {str(shape):<16} " + "  ".join(f"{k} {row['ms'][k]:.0f} ms x{row['speedup'][k]:.2f}"
                                                               for k in best) + f"  [load {row['load']}]", flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
