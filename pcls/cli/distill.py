"""`pcls distill`: teach a student from a teacher (SSLD soft labels, KD, JS) or train two models mutually (DML)."""

from typing import Annotated, Optional

import typer

from pcls.cli.common import ConfigOpt, JsonOpt, OverrideOpt, PrintConfigOpt, RecipeOpt, fail, print_config, resolve_config
from pcls.cli.runs import (ExistOkOpt, GpusOpt, NprocOpt, ResumeOpt, config_for_resume, progress_callbacks,
                           report_run)


def register(app: typer.Typer) -> None:
    @app.command("distill")
    def distill(
        config: ConfigOpt = None,
        recipe: RecipeOpt = None,
        override: OverrideOpt = None,
        print_cfg: PrintConfigOpt = False,
        teacher: Annotated[Optional[str], typer.Option("--teacher", metavar="MODEL[:WEIGHTS]",
                           help="Teacher backbone and its weights (a run's best_model, a .pdparams or a zoo name).")] = None,
        student: Annotated[Optional[str], typer.Option("--student", metavar="MODEL[:WEIGHTS]",
                           help="Student backbone and optional initial weights (e.g. a zoo name).")] = None,
        data: Annotated[Optional[str], typer.Option("--data", metavar="LIST", help="Labelled training list.")] = None,
        extra: Annotated[Optional[str], typer.Option("--extra", metavar="LIST",
                         help="Unlabeled list (lines without labels) used only by the distillation terms.")] = None,
        val: Annotated[Optional[str], typer.Option("--val", metavar="LIST", help="Labelled validation list.")] = None,
        root: Annotated[str, typer.Option("--root", metavar="DIR", help="Image root of the lists.")] = ".",
        class_num: Annotated[Optional[int], typer.Option("--class-num", help="Classes (default: largest label + 1).")] = None,
        loss: Annotated[str, typer.Option("--loss", help="ssld (soft labels), kd (T^2 KL + CE), js, or dml.")] = "ssld",
        temperature: Annotated[float, typer.Option("--temperature", help="Softmax temperature T.")] = 1.0,
        gt_weight: Annotated[Optional[float], typer.Option("--gt-weight",
                             help="Weight of the ground-truth CE (default: 0 for ssld/js, 1 for kd/dml).")] = None,
        epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 20,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Images per batch (with --nproc N: per process).")] = 32,
        lr: Annotated[float, typer.Option("--lr", help="Cosine learning rate.")] = 0.0125,
        image_size: Annotated[Optional[int], typer.Option("--image-size", help="Default: the student's.")] = None,
        output_dir: Annotated[str, typer.Option("--output", help="Global.output_dir.")] = "./output/",
        seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (initialisation, data order).")] = None,
        cache_teacher: Annotated[bool, typer.Option("--cache-teacher",
                                 help="Compute teacher logits once and reuse them in later epochs. With --teacher/"
                                 "--student the training inputs become eval-style (no random augmentation) so the "
                                 "reuse is exact; with -c it is used only when the config's pipeline is "
                                 "deterministic.")] = False,
        device: Annotated[Optional[str], typer.Option("--device", help="cpu, gpu or gpu:N.")] = None,
        gpus: GpusOpt = None,
        nproc: NprocOpt = None,
        resume: ResumeOpt = None,
        exist_ok: ExistOkOpt = False,
        json_out: JsonOpt = False,
    ):
        """Distill a teacher into a student (SSLD, KD, JS) or train two models mutually (DML).

        Example: pcls distill --teacher ResNet50_vd:output/flowers/best_model --student MobileNetV3_large_x1_0 --data dataset/flowers102/train_list.txt --extra dataset/flowers102/extra_list.txt --val dataset/flowers102/val_list.txt --root dataset/flowers102
        """
        if resume and not (config or recipe or teacher or student or data):
            cfg = config_for_resume(resume, override)
        elif config or recipe:
            if teacher or student or data:
                fail("give either -c/--recipe, or --teacher/--student/--data, not both")
            cfg = resolve_config(config, recipe, override)
        else:
            if not (teacher and student and data):
                fail("give --teacher MODEL[:WEIGHTS] --student MODEL --data LIST (or -c CONFIG / --recipe NAME)")
            cfg = _flags_config(teacher, student, data, extra, val, root, class_num, loss, temperature, gt_weight,
                                epochs, batch_size, lr, image_size, output_dir, seed, override, cache_teacher)
        if cfg["Arch"]["name"] != "DistillationModel":
            fail(f"{config or recipe or resume} is not a distillation config (Arch.name is {cfg['Arch']['name']}, "
                 "expected DistillationModel); use 'pcls train' for it")
        if print_cfg:
            print_config(cfg)
            return
        from pcls.engine.trainer import train

        # the engine adds the distillation callback itself (pcls/distill/strategy.py): Arch is a DistillationModel
        summary = train(cfg, strategy={"cache_teacher": cache_teacher}, device=device, nproc=nproc, gpus=gpus,
                        resume=resume, exist_ok=exist_ok, recipe=recipe,
                        callbacks=progress_callbacks(json_out))
        report_run(summary, json_out, "distillation run")


def _flags_config(teacher, student, data, extra, val, root, class_num, loss, temperature, gt_weight, epochs,
                  batch_size, lr, image_size, output_dir, seed, overrides, cache_teacher=False):
    from pcls.config import apply_overrides
    from pcls.config.schema import validate
    from pcls.data.lists import class_count
    from pcls.distill.config import build_distill_config, split_model_arg
    from pcls.zoo.catalog import preprocess_for

    if class_num is None:
        class_num = class_count(data)
    size = image_size or preprocess_for(split_model_arg(student, "student")[0])["input_size"]
    cfg = build_distill_config(teacher=teacher, student=student, train_list=data, root=root, val_list=val,
                               extra_list=extra, class_num=class_num, flavour=loss, temperature=temperature,
                               gt_weight=gt_weight, epochs=epochs, batch_size=batch_size, lr=lr, image_size=size,
                               output_dir=output_dir, seed=seed, augment=not cache_teacher)
    return validate(apply_overrides(cfg, overrides or []))

