"""Write recipes/zoo-<family>.yaml: a standard ImageNet-1k training config for every zoo family.

The seeds' families use their smallest documented model (override Arch.name for a sibling) at its catalog
input size, with hyper-parameters by family kind (pcls's family standard, which the recipe says).
The PaddleClas 2.x families (PADDLECLAS_2X below) carry the hyper-parameters of PaddleClas 2.6's own config
for the named model (ppcls/configs/ImageNet/<Family>/<Model>.yaml): optimizer, lr schedule, epochs, batch
size and sampler, augmentation (written as PaddleClas writes it, e.g. `sh: 1.0/3.0`), loss, Arch options; the
settings pcls cannot express are listed in the recipe's Reference notes. The eval pipeline of those comes from
the catalog (PaddleClas's eval pre-processing for the model) unless the facts give one.
The Reference block records the published model's top-1 from the catalog.
Run after the catalog changes: python scripts/make_family_recipes.py
"""

import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the catalog helpers of the checkout, not of an installed pcls

from pcls.zoo.catalog import eval_transform_ops, preprocess_for  # noqa: E402
TRANSFORMERS = {"ViT", "DeiT", "SwinTransformer", "LeViT", "Twins", "TNT"}
MOBILE = {"MobileNetV1", "MobileNetV2", "MobileNetV3", "ShuffleNetV2", "GhostNet", "PP-LCNet", "MixNet", "ReXNet",
          "EfficientNet"}


def norm():
    return {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "order": ""}}


def recipe_for(family: str, row: dict) -> dict:
    size, short = row["input_size"], row["resize_short"]
    decode = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
    recipe = {
        "_base_": "_imagenet",
        "Global": {"image_shape": [3, size, size]},
        "Arch": {"name": row["arch"], "class_num": 1000},
        "DataLoader": {
            "Train": {"dataset": {"transform_ops": [decode, {"RandCropImage": {"size": size}},
                                                    {"RandFlipImage": {"flip_code": 1}}, norm(), {"ToCHWImage": None}]}},
            "Eval": {"dataset": {"transform_ops": [decode, {"ResizeImage": {"resize_short": short}},
                                                   {"CropImage": {"size": size}}, norm(), {"ToCHWImage": None}]}},
        },
    }
    if family in TRANSFORMERS:
        kind = "transformer: AdamW lr 1e-3 (global batch 1024), weight decay 0.05, 5 warm-up epochs, 300 epochs"
        recipe["Global"]["epochs"] = 300
        recipe["Optimizer"] = {"name": "AdamW", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": 0.05,
                               "no_weight_decay_name": "norm cls_token pos_embed dist_token",
                               "one_dim_param_no_weight_decay": True,
                               "lr": {"name": "Cosine", "learning_rate": 0.001, "warmup_epoch": 5,
                                      "warmup_start_lr": 1e-6, "eta_min": 1e-5},
                               "regularizer": None}  # AdamW decays through weight_decay, not the base's L2
        recipe["Loss"] = {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}], "Eval": [{"CELoss": {"weight": 1.0}}]}
        recipe["DataLoader"]["Train"]["sampler"] = {"batch_size": 128}
        gpus_batch = 128
    elif family in MOBILE:
        kind = "mobile: Momentum, Cosine lr 0.2 (global batch 512), 5 warm-up epochs, L2 4e-5, 240 epochs"
        recipe["Global"]["epochs"] = 240
        recipe["Optimizer"] = {"lr": {"name": "Cosine", "learning_rate": 0.2, "warmup_epoch": 5},
                               "regularizer": {"name": "L2", "coeff": 4e-5}}
        gpus_batch = 64
    else:
        kind = "convolutional: Momentum, Cosine lr 0.1 (global batch 512), L2 1e-4, 120 epochs"
        gpus_batch = 64
    if row["arch"] == "GoogLeNet":  # three heads in training: main + 0.3 x each auxiliary CE
        recipe["Loss"] = {"Train": [{"GoogLeNetLoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]}
    top1 = row.get("top1")
    recipe["Reference"] = {
        "group": "zoo",
        "recipe_group_title": "A standard ImageNet-1k config for every zoo family (published top-1 of the model)",
        "row": f"{family}: {row['arch']}",
        "order": 0,
        "top1": top1,
        "top5": row.get("top5"),
        "documented": f"{top1 * 100:.2f}%" if top1 is not None else None,
        "source": "zoo catalog (seed model tables)",
        "gpus": 8,
        "batch_size": gpus_batch,
        "notes": f"pcls family standard ({kind}); the documented figure is the published model's, "
                 "trained with PaddleClas's own config for it",
    }
    return recipe


# -- the PaddleClas 2.x families: PaddleClas 2.6's config for one model each ------------------------------------
DECODE = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
DECODE_PIL = {"DecodeImage": {"to_rgb": True, "channel_first": False, "backend": "pil"}}
FLIP = {"RandFlipImage": {"flip_code": 1}}
ERASING = {"RandomErasing": {"EPSILON": 0.25, "sl": 0.02, "sh": "1.0/3.0", "r1": 0.3, "attempt": 10,
                             "use_log_aspect": True, "mode": "pixel"}}


def timm_aa(config_str, size=224, interpolation="bicubic", **extra) -> dict:
    return {"TimmAutoAugment": {"config_str": config_str, "interpolation": interpolation, "img_size": size, **extra}}


def multi_scale(scales, first_bs) -> dict:
    """PaddleClas's MultiScaleSampler section: each batch at a size from `scales`, first_bs images at the first."""
    return {"name": "MultiScaleSampler", "scales": scales, "first_bs": first_bs, "divided_factor": 32,
            "is_training": True}


def mixing(mixup_alpha, cutmix_alpha, prob=0.5) -> list:
    return [{"OpSampler": {"MixupOperator": {"alpha": mixup_alpha, "prob": prob},
                           "CutmixOperator": {"alpha": cutmix_alpha, "prob": prob}}}]


def normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale="1.0/255.0") -> dict:
    return {"NormalizeImage": {"scale": scale, "mean": list(mean), "std": list(std), "order": ""}}


def rand_crop(size, **options) -> dict:
    return {"RandCropImage": {"size": size, **options}}


def adamw(lr, eta_min, warmup_epoch, warmup_start_lr, weight_decay=0.05, no_weight_decay_name=None,
          one_dim=True, **lr_extra) -> dict:
    optimizer = {"name": "AdamW", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "weight_decay": weight_decay}
    if no_weight_decay_name:
        optimizer["no_weight_decay_name"] = no_weight_decay_name
    if one_dim:
        optimizer["one_dim_param_no_weight_decay"] = True
    optimizer["lr"] = {"name": "Cosine", "learning_rate": lr, "eta_min": eta_min, "warmup_epoch": warmup_epoch,
                       "warmup_start_lr": warmup_start_lr, **lr_extra}
    optimizer["regularizer"] = None  # decoupled weight decay, not the base's L2
    return optimizer


def momentum(lr_section, l2, **extra) -> dict:
    return {"name": "Momentum", "momentum": 0.9, **extra, "lr": lr_section,
            "regularizer": {"name": "L2", "coeff": l2}}


def cosine(lr, warmup_epoch=None, **extra) -> dict:
    section = {"name": "Cosine", "learning_rate": lr}
    if warmup_epoch:
        section["warmup_epoch"] = warmup_epoch
    return {**section, **extra}


CE_LS = {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.1}}], "Eval": [{"CELoss": {"weight": 1.0}}]}
CE = {"Train": [{"CELoss": {"weight": 1.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]}
AMP_O1 = {"use_amp": True, "scale_loss": 128.0, "use_dynamic_loss_scaling": True, "level": "O1"}
AMP_O1_65536 = {**AMP_O1, "scale_loss": 65536.0}


def vit_style(size, aa="rand-m9-mstd0.5-inc1", interpolation="bicubic", decode=DECODE) -> tuple:
    """RandCrop + flip + TimmAutoAugment + normalise + RandomErasing, Mixup 0.8 / Cutmix 1.0."""
    ops = [decode, rand_crop(size, interpolation=interpolation, backend="pil"), FLIP, timm_aa(aa, size), normalize(),
           ERASING]
    return ops, mixing(0.8, 1.0)


# family -> PaddleClas 2.6's config for `model`, as facts. Keys: model, config, epochs, gpus, batch_size,
# optimizer, loss, train_ops, batch_ops, and optionally arch (backbone kwargs), ema, amp, update_freq,
# drop_last, sampler (a sampler section instead of batch_size's), dataset (its name), eval_ops, train_mode,
# image_size (the Global.image_shape side when it differs from the catalog's), left_out, remark.
def _paddleclas_2x() -> dict:
    families = {}

    def add(family, model, folder, **facts):
        families[family] = {"model": model, "config": f"ppcls/configs/ImageNet/{folder}/{model}.yaml", "gpus": 8,
                            "loss": CE_LS, "batch_ops": [], "left_out": [], **facts}

    ops, mix = vit_style(224, aa="rand-m7-mstd0.5-inc1")
    add("PP-HGNet", "PPHGNet_tiny", "PPHGNet", epochs=600, batch_size=128, amp=AMP_O1,
        optimizer=momentum(cosine(0.5, 5), 4e-5), train_ops=ops, batch_ops=mixing(0.2, 1.0))
    add("PP-HGNetV2", "PPHGNetV2_B0", "PPHGNetV2", epochs=200, batch_size=128, amp=AMP_O1, arch={"pretrained": True},
        optimizer=momentum(cosine(0.5, 5), 2e-5), train_ops=ops,
        remark="Arch.pretrained: True fine-tunes from the zoo's SSLD weights, so the documented figure is of those "
               "weights, not of this schedule")
    add("PP-LCNetV2", "PPLCNetV2_base", "PPLCNetV2", epochs=480, batch_size=500, dataset="MultiScaleDataset",
        sampler=multi_scale([160, 192, 224, 288, 320], 500), optimizer=momentum(cosine(0.8, 5), 4e-5),
        train_ops=[DECODE, rand_crop(224), FLIP, normalize()])
    ops, mix = vit_style(224)
    add("ConvNeXt", "ConvNeXt_tiny", "ConvNeXt", epochs=300, batch_size=128, drop_last=True, update_freq=4,
        ema=0.9999, arch={"drop_path_rate": 0.1, "layer_scale_init_value": 1e-6, "head_init_scale": 1.0},
        optimizer=adamw(4e-3, 1e-6, 20, 0.0), train_ops=ops, batch_ops=mix)
    ops, mix = vit_style(256)
    add("SwinTransformerV2", "SwinTransformerV2_tiny_patch4_window8_256", "SwinTransformerV2", epochs=300,
        batch_size=128, optimizer=adamw(1e-3, 1e-5, 20, 1e-6, no_weight_decay_name="absolute_pos_embed "
                                        "relative_position_bias_table .bias norm"),
        train_ops=ops, batch_ops=mix)
    ops, mix = vit_style(224)
    add("CSWinTransformer", "CSWinTransformer_tiny_224", "CSWinTransformer", epochs=300, batch_size=128,
        optimizer=adamw(1e-3, 1e-5, 20, 1e-6, no_weight_decay_name="pos_embed cls_token .bias norm"),
        train_ops=ops, batch_ops=mix)
    add("PVTV2", "PVT_V2_B0", "PVTV2", epochs=300, batch_size=128, arch={"drop_path_rate": 0.1, "drop_rate": 0.0},
        optimizer=adamw(1e-3, 1e-5, 20, 1e-6,
                        no_weight_decay_name="pos_embed1 pos_embed2 pos_embed3 pos_embed4 cls_token"),
        train_ops=ops, batch_ops=mix)
    cvt_ops, mix = vit_style(224, decode=DECODE_PIL)
    add("CvT", "CvT_13_224", "CvT", epochs=300, batch_size=128, drop_last=True, update_freq=2,
        optimizer=adamw(2e-3, 1e-5, 5, 1e-6, no_weight_decay_name="pos_embed cls_token .bias", by_epoch=True),
        train_ops=cvt_ops, batch_ops=mix)
    add("MobileViT", "MobileViT_XXS", "MobileViT", epochs=300, batch_size=128,
        optimizer=adamw(0.002, 0.0002, 5, 0.0002, weight_decay=0.01, no_weight_decay_name=".bias norm"),
        train_ops=[DECODE, rand_crop(256, interpolation="bilinear", backend="pil"), FLIP,
                   normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))])
    add("MobileViTV2", "MobileViTV2_x0_5", "MobileViTV2", epochs=300, batch_size=128, ema=0.9995, amp=AMP_O1_65536,
        optimizer={**adamw(0.009, 0.0009, 16, 1e-6, weight_decay=0.004), "clip_norm": 10.0},
        train_ops=[DECODE_PIL, rand_crop(256, interpolation="bicubic", backend="pil", use_log_aspect=True), FLIP,
                   {"RandAugmentV3": {"num_layers": 2, "interpolation": "bicubic"}},
                   normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), {"RandomErasing": {**ERASING["RandomErasing"],
                                                                                  "mode": "const"}}],
        batch_ops=mixing(0.2, 1.0, prob=0.25))
    add("MobileViTV3", "MobileViTV3_XXS", "MobileViTV3", epochs=300, batch_size=48, ema=0.9995, amp=AMP_O1_65536,
        dataset="MultiScaleDataset", sampler=multi_scale([256, 160, 192, 224, 288, 320], 48),
        arch={"dropout": 0.05}, optimizer=adamw(0.002, 0.0002, 1, 0.0002, weight_decay=0.01, one_dim=False),
        train_ops=[DECODE, rand_crop(256, interpolation="bilinear", use_log_aspect=True), FLIP,
                   normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))])
    add("FasterNet", "FasterNet_T0", "FasterNet", epochs=300, batch_size=50,
        optimizer=adamw(0.004, 1e-5, 20, 1e-6, weight_decay=0.005),
        train_ops=[DECODE_PIL, rand_crop(224, interpolation="bicubic", backend="pil"), FLIP,
                   {"TimmAutoAugment": {"config_str": None}}, normalize()],
        batch_ops=mixing(0.05, 1.0),
        left_out=["Global.eval_during_train: False (pcls evaluates every epoch, as the other recipes)"])
    ops, mix = vit_style(224)
    add("NextViT", "NextViT_small_224", "NextViT", epochs=300, batch_size=128, amp=AMP_O1,
        optimizer=adamw(1e-3, 1e-5, 20, 1e-6, weight_decay=0.1, no_weight_decay_name=".bias norm"),
        train_ops=ops, batch_ops=mix)
    add("UniFormer", "UniFormer_small", "UniFormer", epochs=300, batch_size=128, arch={"pretrained": True},
        optimizer=adamw(1e-3, 1e-5, 5, 1e-6, no_weight_decay_name="pos_embed cls_token .bias norm"),
        train_ops=ops, batch_ops=mix,
        remark="Arch.pretrained: True fine-tunes from the zoo's weights, so the documented figure is of those "
               "weights, not of this schedule")
    add("VAN", "VAN_B0", "VAN", epochs=300, batch_size=256, drop_last=True,
        arch={"drop_path_rate": 0.1, "drop_rate": 0.0}, optimizer=adamw(1e-3, 1e-6, 5, 1e-6),
        train_ops=[DECODE, rand_crop(224, interpolation="random", backend="pil"), FLIP,
                   timm_aa("rand-m9-mstd0.5-inc1", interpolation="random", mean=[0.5, 0.5, 0.5]),
                   normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), ERASING],
        batch_ops=mixing(0.8, 1.0))
    add("TinyNet", "TinyNet_E", "TinyNet", epochs=450, batch_size=128, drop_last=True, ema=0.9999,
        arch={"override_params": {"batch_norm_momentum": 0.9, "batch_norm_epsilon": 1e-5, "depth_trunc": "round",
                                  "drop_connect_rate": 0.0}},
        optimizer={"name": "RMSProp", "momentum": 0.9, "rho": 0.9, "epsilon": 0.001,
                   "one_dim_param_no_weight_decay": True,
                   "lr": {"name": "Step", "learning_rate": 0.048, "step_size": 2.4, "gamma": 0.97,
                          "warmup_epoch": 3, "warmup_start_lr": 1e-6},
                   "regularizer": {"name": "L2", "coeff": 1e-5}},
        train_ops=[DECODE_PIL, rand_crop(106, interpolation="bicubic", backend="pil", use_log_aspect=True), FLIP,
                   {"ColorJitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4}}, normalize()])
    add("ESNet", "ESNet_x0_25", "ESNet", epochs=360, batch_size=512, optimizer=momentum(cosine(0.8, 5), 3e-5),
        train_ops=[DECODE, rand_crop(224), FLIP, normalize()])
    add("MicroNet", "MicroNet_M0", "MicroNet", epochs=600, gpus=4, batch_size=128, loss=CE,
        optimizer=momentum(cosine(0.2), 3e-5),
        train_ops=[DECODE, rand_crop(224, interpolation="bilinear", backend="pil"), FLIP, normalize()])
    add("StarNet", "StarNet_S1", "StarNet", epochs=300, batch_size=256, amp=AMP_O1,
        arch={"drop_rate": 0, "drop_path_rate": 0.0}, optimizer=adamw(3e-3, 1e-5, 5, 1e-6),
        train_ops=[DECODE, rand_crop(224), FLIP, timm_aa("rand-m1-mstd0.5-inc1", interpolation="random"), normalize(),
                   {"RandomErasing": {"EPSILON": 0.25, "mode": "pixel"}}],
        batch_ops=mixing(0.8, 0.2))
    ops, mix = vit_style(224)
    add("DSNet", "DSNet_tiny", "DSNet", epochs=300, batch_size=128,
        optimizer=adamw(1e-3, 1e-5, 5, 1e-6, no_weight_decay_name="norm cls_token pos_embed dist_token"),
        train_ops=ops, batch_ops=mix)
    add("CSPNet", "CSPDarkNet53", "CSPNet", epochs=120, batch_size=64, loss=CE,
        optimizer=momentum({"name": "Piecewise", "decay_epochs": [30, 60, 90], "values": [0.1, 0.01, 0.001, 0.0001]},
                           1e-4),
        train_ops=[DECODE, rand_crop(256), FLIP, normalize()])
    add("EfficientNetV2", "EfficientNetV2_S", "EfficientNetV2", epochs=350, batch_size=128, drop_last=True,
        ema=0.9999, amp=AMP_O1_65536, arch={"use_sync_bn": True}, optimizer=momentum(cosine(0.65, 5), 1e-5),
        train_ops=[DECODE, rand_crop(224, scale=[0.05, 1.0]), FLIP, {"RandAugmentV2": {"num_layers": 2, "magnitude": 5}},
                   normalize((128.0, 128.0, 128.0), (128.0, 128.0, 128.0), scale=1.0)],
        eval_ops=[DECODE, {"CropImageAtRatio": {"size": 384, "pad": 32, "interpolation": "bilinear"}},
                  normalize((128.0, 128.0, 128.0), (128.0, 128.0, 128.0), scale=1.0), {"ToCHWImage": None}],
        train_mode="efficientnetv2")
    add("MobileNeXt", "MobileNeXt_x1_0", "MobileNeXt", epochs=200, gpus=4, batch_size=128, drop_last=True,
        optimizer=momentum(cosine(0.1, 3, eta_min=1e-5, warmup_start_lr=1e-4, by_epoch=True), 1e-4,
                           use_nesterov=True, no_weight_decay_name=".bias", one_dim_param_no_weight_decay=True),
        train_ops=[DECODE_PIL, rand_crop(224, interpolation="random", backend="pil"), FLIP,
                   {"ColorJitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0}}, normalize()])
    add("PeleeNet", "PeleeNet", "PeleeNet", epochs=120, gpus=4, batch_size=128, loss=CE,
        optimizer=momentum(cosine(0.18), 1e-4),
        train_ops=[DECODE, rand_crop(224, interpolation="bilinear", backend="pil"), FLIP, normalize()])
    add("MobileNetV4", "MobileNetV4_conv_small", "MobileNetV4", epochs=2400, batch_size=1024, amp=AMP_O1,
        ema=0.9998, arch={"drop_rate": 0.25, "drop_path_rate": 0.03},
        optimizer={**adamw(0.002, 0.0, 5, 0.0, weight_decay=0.06), "clip_grad": 5.0},
        train_ops=[DECODE, rand_crop(224, interpolation="bicubic", backend="pil"), FLIP, timm_aa("rand-m8-inc1-mstd1.0"),
                   normalize(), ERASING],
        batch_ops=mixing(0.8, 1.0))
    return families


PADDLECLAS_2X = _paddleclas_2x()


def _eval_ops(model: str) -> list:
    """PaddleClas's eval pre-processing for `model`, from the catalog, written as a recipe writes it."""
    ops = eval_transform_ops(preprocess_for(model))
    for op in ops:
        if "NormalizeImage" in op:
            norm_op = op["NormalizeImage"]
            if norm_op["mean"] == [128 / 255] * 3:  # EfficientNetV2: PaddleClas writes scale 1, mean/std 128
                norm_op.update(scale=1.0, mean=[128.0] * 3, std=[128.0] * 3)
            else:
                norm_op["scale"] = "1.0/255.0"
    return ops


def recipe_2x(family: str, facts: dict, row: dict) -> dict:
    """A recipe with the hyper-parameters of PaddleClas 2.6's config for facts['model']."""
    model = facts["model"]
    size = facts.get("image_size") or row["input_size"]
    eval_ops = copy.deepcopy(facts.get("eval_ops")) or _eval_ops(model)  # a copy: no YAML alias to the train ops
    train = {"dataset": {"transform_ops": facts["train_ops"] + [{"ToCHWImage": None}]},
             "sampler": facts.get("sampler") or {"batch_size": facts["batch_size"]}}
    if facts.get("dataset"):
        train["dataset"] = {"name": facts["dataset"], **train["dataset"]}
    if facts["batch_ops"]:
        train["dataset"]["batch_transform_ops"] = facts["batch_ops"]
    if facts.get("drop_last"):
        train["sampler"]["drop_last"] = True
    recipe = {"_base_": "_imagenet", "Global": {"image_shape": [3, size, size], "epochs": facts["epochs"]}}
    if facts.get("update_freq"):
        recipe["Global"]["update_freq"] = facts["update_freq"]
    if facts.get("train_mode"):
        recipe["Global"]["train_mode"] = facts["train_mode"]
    recipe["Arch"] = {"name": model, "class_num": 1000, **facts.get("arch", {})}
    if facts.get("ema"):
        recipe["EMA"] = {"decay": facts["ema"]}
    if facts.get("amp"):
        recipe["AMP"] = facts["amp"]
    recipe["Loss"] = facts["loss"]
    recipe["Optimizer"] = facts["optimizer"]
    recipe["DataLoader"] = {"Train": train, "Eval": {"dataset": {"transform_ops": eval_ops}}}
    recipe["Infer"] = {"transforms": eval_ops}
    top1 = row.get("top1")
    left_out = "; ".join(facts["left_out"]) or "nothing"
    recipe["Reference"] = {
        "group": "zoo",
        "recipe_group_title": "A standard ImageNet-1k config for every zoo family (published top-1 of the model)",
        "row": f"{family}: {model}",
        "order": 0,
        "top1": top1,
        "top5": row.get("top5"),
        "documented": f"{top1 * 100:.2f}%" if top1 is not None else None,
        "source": f"PaddleClas 2.6 {facts['config']}; figure: PaddleClas's model page",
        "gpus": facts["gpus"],
        "batch_size": facts["batch_size"],
        "notes": f"hyper-parameters of PaddleClas 2.6's config for {model}; left out (pcls cannot express them): "
                 f"{left_out}" + (f"; {facts['remark']}" if facts.get("remark") else ""),
    }
    return recipe


def _write(family: str, model: str, recipe: dict) -> None:
    slug = re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")
    path = ROOT / "recipes" / f"zoo-{slug}.yaml"
    header = (f"# Standard ImageNet-1k training for the {family} family, with {model} "
              f"(override -o Arch.name=... for a sibling).\n")
    path.write_text(header + yaml.safe_dump(recipe, sort_keys=False, default_flow_style=None, width=110))
    print(path.name, model)


def main() -> None:
    rows = json.loads((ROOT / "pcls" / "zoo" / "catalog.json").read_text())
    specs = {line.split(":")[0] for line in (ROOT / "tests" / "reference" / "model_specs.txt").read_text().split()}
    by_family = {}
    for row in rows:
        # the seeds' table lists ResNeXt101_32x4d under the wsl family; the wsl recipe should train a wsl model
        wsl_mismatch = (row.get("family") or "").endswith("_wsl") and not row["name"].endswith("_wsl")
        if row.get("family") and row.get("arch") in specs and row["name"] == row["arch"] and not wsl_mismatch:
            by_family.setdefault(row["family"], []).append(row)
    for family, members in sorted(by_family.items()):
        # the smallest model with a documented top-1 (the smallest of all when the seeds give none)
        smallest = min(members, key=lambda r: (r.get("top1") is None, r.get("params_m") or 1e9))
        _write(family, smallest["arch"], recipe_for(family, smallest))
    by_name = {row["name"]: row for row in rows}
    for family, facts in sorted(PADDLECLAS_2X.items()):
        _write(family, facts["model"], recipe_2x(family, facts, by_name[facts["model"]]))


if __name__ == "__main__":
    main()
