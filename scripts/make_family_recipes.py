"""Write recipes/zoo-<family>.yaml: a standard ImageNet-1k training config for every zoo family.

Each uses the family's smallest documented model (override Arch.name for a sibling) at its catalog input
size, with hyper-parameters by family kind. The Reference block records the published model's top-1 from the
catalog; the hyper-parameters are pcls's family standard, which the recipe says.
Run after the catalog changes: python scripts/make_family_recipes.py
"""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
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
        slug = re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")
        path = ROOT / "recipes" / f"zoo-{slug}.yaml"
        header = (f"# Standard ImageNet-1k training for the {family} family, with {smallest['arch']} "
                  f"(override -o Arch.name=... for a sibling).\n")
        path.write_text(header + yaml.safe_dump(recipe_for(family, smallest), sort_keys=False,
                                                default_flow_style=None, width=110))
        print(path.name, smallest["arch"])


if __name__ == "__main__":
    main()
