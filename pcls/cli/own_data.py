"""The options of `pcls train --model M --data DIR` (training on your own class folders) and their checks; the
work is pcls.recipes.own_data's."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from pcls.cli.common import fail

ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", metavar="NAME", help="With --data: the zoo model to fine-tune (input size and pre-processing from its "
    "catalog row), e.g. PPLCNet_x1_0.")]
DataOpt = Annotated[Optional[str], typer.Option(
    "--data", metavar="DIR", help="With --model: a folder of class folders (DIR/<class>/*.jpg), or one with train/ "
    "and val/ class folders.")]
ValSplitOpt = Annotated[float, typer.Option(
    "--val-split", metavar="F", help="With --data: the fraction of each class held out for validation (fixed "
    "seed) when DIR has no train/ and val/ folders.")]
NoPretrainedOpt = Annotated[bool, typer.Option(
    "--no-pretrained", help="With --data: train from scratch instead of from the zoo's ImageNet weights.")]
ImageSizeOpt = Annotated[Optional[int], typer.Option(
    "--image-size", metavar="PX", min=8, help="With --data: input size in pixels (default: the model's; "
    "resize-short follows the zoo's ratio).")]


def folder_run(model, data, *, val_split, pretrained, image_size, name, overrides, exist_ok, write,
               config=None, recipe=None, resume=None):
    """The config of `--model M --data DIR` (its Global.run_name: the run folder chosen), or a one-line error for a
    combination that cannot work."""
    if image_size and not data:
        fail("--image-size is for --model/--data; with -c/--recipe set the sizes in the config's transform ops")
    if config or recipe or resume:
        fail("--model/--data build the config themselves: drop -c/--recipe/--resume (continue a folder run with "
             "--resume output/<run> alone; run it again with -c output/<run>/config.yaml)")
    if not (model and data):
        fail(f"--{'data' if model else 'model'} is missing: train on your own images with --model NAME --data DIR "
             f"(e.g. pcls train --model PPLCNet_x1_0 --data my_images/)")
    from pcls.recipes.own_data import prepare_folder_run

    return prepare_folder_run(model, data, val_split=val_split, pretrained=pretrained, image_size=image_size,
                              run_name=name, overrides=overrides, exist_ok=exist_ok, write=write)
