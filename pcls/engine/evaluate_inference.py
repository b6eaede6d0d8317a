"""`pcls eval` on CPU through Paddle Inference: the eval-mode network, traced once with `paddle.jit.save` (logits
out, any batch size, the image size of the data) into a temp folder and run by a oneDNN predictor -- the path an
export takes. Paddle's dygraph CPU kernels run a convolution as im2col + a matrix product per image; oneDNN fuses
convolution, BatchNorm and activation. Logits equal the dygraph model's within float rounding
(tests/engine/test_eval_inference.py); speed in CHANGELOG (#29).

`PCLS_EVAL_INFERENCE=0` evaluates in dygraph. A network that cannot be traced, or outputs more than one tensor
(a distillation pair), is evaluated in dygraph with a log line saying why.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Optional, Tuple

from pcls.errors import PclsError, clip

log = logging.getLogger(__name__)

EVAL_INFERENCE_ENV = "PCLS_EVAL_INFERENCE"


def inference_eval_enabled(env=None) -> bool:
    """Whether CPU evaluation runs through Paddle Inference: $PCLS_EVAL_INFERENCE, 1 (default) or 0."""
    value = (os.environ if env is None else env).get(EVAL_INFERENCE_ENV, "1").strip().lower()
    if value in ("1", "true", "yes", "on", ""):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise PclsError(f"{EVAL_INFERENCE_ENV}={clip(value, 40)!r} is not a switch; set it to 1 (evaluate through "
                    "Paddle Inference, the default) or 0 (dygraph)")


class InferenceEvalModel:
    """Images [N, C, H, W] (a paddle Tensor) -> logits (a paddle Tensor), like the eval-mode network it was traced
    from. One predictor per input shape (C, H, W), traced on first use; the network itself is left untouched."""

    def __init__(self, net, threads: int):
        self.net, self.threads = net, int(threads)
        self._runners = {}

    def prepare(self, chw: Tuple[int, int, int]) -> Optional[str]:
        """Trace for images of shape `chw`; None when ready, else why the network cannot run this way."""
        try:
            self._runner(tuple(int(d) for d in chw))
        except _NotTraceable as why:
            return str(why)
        return None

    def __call__(self, images):
        import paddle

        run = self._runner(tuple(int(d) for d in images.shape[1:]))
        return paddle.to_tensor(run(images.numpy()))

    def _runner(self, chw):
        if chw not in self._runners:
            self._runners[chw] = self._trace(chw)
        return self._runners[chw]

    def _trace(self, chw):
        import paddle
        import paddle.inference as pi

        from pcls.deploy.runtimes import RuntimeSettings, apply_plan, paddle_config_plan, runner_from_config
        from pcls.deploy.spec import MODEL_PREFIX, model_files
        from pcls.utils.quiet import quiet

        self.net.eval()
        spec = paddle.static.InputSpec([None, *chw], "float32", "x")
        traced = _traced(self.net)
        with tempfile.TemporaryDirectory(prefix="pcls-eval-") as folder:
            try:
                with quiet():  # Paddle prints PIR notices nobody can act on
                    paddle.jit.save(traced, str(Path(folder) / MODEL_PREFIX), input_spec=[spec])
            except Exception as err:  # noqa: BLE001 - any failure to trace means: evaluate in dygraph
                if traced.output_kind:
                    raise _NotTraceable(f"the network outputs a {traced.output_kind}, not one logits tensor") from None
                raise _NotTraceable(f"paddle.jit.save failed: {type(err).__name__}: {clip(err)}") from None
            graph, params = model_files(folder)  # PIR; the legacy program when PIR is switched off
            config = pi.Config(str(graph), str(params))
            graph_format = "pir" if graph.suffix == ".json" else "legacy"
            apply_plan(config, paddle_config_plan(RuntimeSettings(device="cpu", threads=self.threads), chw[1:],
                                                  graph_format))
            return runner_from_config(config)  # the predictor reads the graph and weights now: the folder can go

def _traced(net):
    """A wrapper layer for paddle.jit.save, which converts the forward of the layer it is given: the network's
    own forward stays a plain dygraph method (training and checkpoints never see the trace)."""
    import paddle

    class Traced(paddle.nn.Layer):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.output_kind = inner, None

        def forward(self, x):  # the first argument must be called `self` for paddle.jit.save
            output = self.inner(x)
            if isinstance(output, (dict, list, tuple)):  # a distillation pair, auxiliary heads: the loss needs them
                self.output_kind = type(output).__name__
                raise TypeError("not one tensor")
            return output

    return Traced(net)


class _NotTraceable(Exception):
    pass
