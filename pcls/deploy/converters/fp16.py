"""fp16 Paddle models for GPU. Paddle 3.3's `paddle.inference.convert_to_mixed_precision` parses a ProgramDesc
(`.pdmodel`): on a PIR `.json` it fails ("Failed to parse program_desc from binary string", checked on 3.3.1), so
a PIR export is refused with the routes that work (fp16 at load time, TensorRT fp16, ONNX fp16)."""

from __future__ import annotations

from pathlib import Path

from pcls.deploy.spec import model_files
from pcls.errors import PclsError
from pcls.utils.quiet import quiet

PIR_FP16_REFUSED = ("--fp16 cannot convert a Paddle 3 (PIR) export: export fp32 and predict with --device gpu "
                    "--precision fp16 (Paddle Inference runs it in half precision), or add --trt or --format onnx")


def writes_pir() -> bool:
    """True when paddle.jit.save writes a PIR program (.json), Paddle 3's default."""
    import paddle

    return bool(paddle.get_flags(["FLAGS_enable_pir_api"])["FLAGS_enable_pir_api"])


def check_paddle_fp16() -> None:
    if writes_pir():
        raise PclsError(PIR_FP16_REFUSED)


def convert_paddle_fp16(model_dir: Path) -> None:
    """Replace a legacy (.pdmodel) export's model by its fp16 form, in place."""
    import paddle.inference as pi

    graph, params = model_files(model_dir)
    if graph.suffix == ".json":
        raise PclsError(PIR_FP16_REFUSED)
    tmp_graph, tmp_params = model_dir / f"fp16{graph.suffix}", model_dir / "fp16.pdiparams"
    with quiet():
        pi.convert_to_mixed_precision(str(graph), str(params), str(tmp_graph), str(tmp_params),
                                      pi.PrecisionType.Half, pi.PlaceType.GPU, True)
    tmp_graph.replace(graph)
    tmp_params.replace(params)
