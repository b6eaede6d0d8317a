"""`pcls export` and `pcls predict`."""

import typer

from pcls.cli.common import not_implemented


def register(app: typer.Typer) -> None:
    @app.command("export")
    def _export():
        """Export a model to Paddle inference or ONNX. Example: pcls export ResNet50_vd --weights W --out inference/"""
        not_implemented("export")

    @app.command("predict")
    def _predict():
        """Classify images with an exported model. Example: pcls predict ./imgs --model inference/ --topk 5"""
        not_implemented("predict")
