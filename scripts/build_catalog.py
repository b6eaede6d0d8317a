"""Regenerate pcls/zoo/catalog.json from tests/reference/zoo_catalog.json (the seeds' models; another path may be
given as the first argument) and tests/reference/zoo_catalog_2x.json (the PaddleClas 2.x models, written by
scripts/derive_catalog_2x.py; another path may be given as the second argument).

Adds the default pre-processing every model exposes (mean/std, interpolation) so prediction and export
read it from one place, and the paper each family comes from (the seeds' model-list references; for the
2.x families, the paper PaddleClas's model page cites).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the in-repository copy by default; pass another zoo_catalog.json to refresh from a newer measurement
SOURCE = ROOT / "tests" / "reference" / "zoo_catalog.json"
SOURCE_2X = ROOT / "tests" / "reference" / "zoo_catalog_2x.json"
TARGET = ROOT / "pcls" / "zoo" / "catalog.json"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


# family -> the paper that introduced it (title, first author, year, link); from the seeds' reference list.
PAPERS = {
    "AlexNet": "ImageNet Classification with Deep Convolutional Neural Networks (Krizhevsky et al., 2012), "
    "https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks.pdf",
    "DARTS": "DARTS: Differentiable Architecture Search (Liu et al., 2018), https://arxiv.org/abs/1806.09055",
    "DLA": "Deep Layer Aggregation (Yu et al., 2017), https://arxiv.org/abs/1707.06484",
    "DPN": "Dual Path Networks (Chen et al., 2017), https://arxiv.org/abs/1707.01629",
    "DarkNet": "YOLOv3: An Incremental Improvement (Redmon and Farhadi, 2018), https://arxiv.org/abs/1804.02767",
    "DeiT": "Training data-efficient image transformers & distillation through attention (Touvron et al., 2020), "
    "https://arxiv.org/abs/2012.12877",
    "DenseNet": "Densely Connected Convolutional Networks (Huang et al., 2016), https://arxiv.org/abs/1608.06993",
    "EfficientNet": "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks (Tan and Le, 2019), "
    "https://arxiv.org/abs/1905.11946",
    "GhostNet": "GhostNet: More Features from Cheap Operations (Han et al., 2019), https://arxiv.org/abs/1911.11907",
    "HRNet": "Deep High-Resolution Representation Learning for Visual Recognition (Wang et al., 2019), "
    "https://arxiv.org/abs/1908.07919",
    "HarDNet": "HarDNet: A Low Memory Traffic Network (Chao et al., 2019), https://arxiv.org/abs/1909.00948",
    "Inception": "Going Deeper with Convolutions (Szegedy et al., 2014), https://arxiv.org/abs/1409.4842",
    "LeViT": "LeViT: a Vision Transformer in ConvNet's Clothing for Faster Inference (Graham et al., 2021), "
    "https://arxiv.org/abs/2104.01136",
    "MixNet": "MixConv: Mixed Depthwise Convolutional Kernels (Tan and Le, 2019), https://arxiv.org/abs/1907.09595",
    "MobileNetV1": "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications "
    "(Howard et al., 2017), https://arxiv.org/abs/1704.04861",
    "MobileNetV2": "MobileNetV2: Inverted Residuals and Linear Bottlenecks (Sandler et al., 2018), "
    "https://arxiv.org/abs/1801.04381",
    "MobileNetV3": "Searching for MobileNetV3 (Howard et al., 2019), https://arxiv.org/abs/1905.02244",
    "PP-LCNet": "PP-LCNet: A Lightweight CPU Convolutional Neural Network (Cui et al., 2021), "
    "https://arxiv.org/abs/2109.15099",
    "ReXNet": "Rethinking Channel Dimensions for Efficient Model Design (Han et al., 2020), "
    "https://arxiv.org/abs/2007.00992",
    "RedNet": "Involution: Inverting the Inherence of Convolution for Visual Recognition (Li et al., 2021), "
    "https://arxiv.org/abs/2103.06255",
    "RegNet": "Designing Network Design Spaces (Radosavovic et al., 2020), https://arxiv.org/abs/2003.13678",
    "RepVGG": "RepVGG: Making VGG-style ConvNets Great Again (Ding et al., 2021), https://arxiv.org/abs/2101.03697",
    "Res2Net": "Res2Net: A New Multi-scale Backbone Architecture (Gao et al., 2019), https://arxiv.org/abs/1904.01169",
    "ResNeSt": "ResNeSt: Split-Attention Networks (Zhang et al., 2020), https://arxiv.org/abs/2004.08955",
    "ResNeXt": "Aggregated Residual Transformations for Deep Neural Networks (Xie et al., 2016), "
    "https://arxiv.org/abs/1611.05431",
    "ResNeXt101_wsl": "Exploring the Limits of Weakly Supervised Pretraining (Mahajan et al., 2018), "
    "https://arxiv.org/abs/1805.00932",
    "ResNet": "Deep Residual Learning for Image Recognition (He et al., 2015), https://arxiv.org/abs/1512.03385",
    "SE_ResNeXt": "Squeeze-and-Excitation Networks (Hu et al., 2017), https://arxiv.org/abs/1709.01507",
    "SE_ResNet_vd": "Squeeze-and-Excitation Networks (Hu et al., 2017), https://arxiv.org/abs/1709.01507",
    "ShuffleNetV2": "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design (Ma et al., 2018), "
    "https://arxiv.org/abs/1807.11164",
    "SqueezeNet": "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size "
    "(Iandola et al., 2016), https://arxiv.org/abs/1602.07360",
    "SwinTransformer": "Swin Transformer: Hierarchical Vision Transformer using Shifted Windows (Liu et al., 2021), "
    "https://arxiv.org/abs/2103.14030",
    "TNT": "Transformer in Transformer (Han et al., 2021), https://arxiv.org/abs/2103.00112",
    "Twins": "Twins: Revisiting the Design of Spatial Attention in Vision Transformers (Chu et al., 2021), "
    "https://arxiv.org/abs/2104.13840",
    "VGG": "Very Deep Convolutional Networks for Large-Scale Image Recognition (Simonyan and Zisserman, 2014), "
    "https://arxiv.org/abs/1409.1556",
    "ViT": "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale (Dosovitskiy et al., 2020), "
    "https://arxiv.org/abs/2010.11929",
    "Xception": "Xception: Deep Learning with Depthwise Separable Convolutions (Chollet, 2016), "
    "https://arxiv.org/abs/1610.02357",
    # the PaddleClas 2.x families
    "CSPNet": "CSPNet: A New Backbone that can Enhance Learning Capability of CNN (Wang et al., 2019), "
    "https://arxiv.org/abs/1911.11929",
    "CSWinTransformer": "CSWin Transformer: A General Vision Transformer Backbone with Cross-Shaped Windows "
    "(Dong et al., 2021), https://arxiv.org/abs/2107.00652",
    "ConvNeXt": "A ConvNet for the 2020s (Liu et al., 2022), https://arxiv.org/abs/2201.03545",
    "CvT": "CvT: Introducing Convolutions to Vision Transformers (Wu et al., 2021), https://arxiv.org/abs/2103.15808",
    "DSNet": "Dual-stream Network for Visual Recognition (Mao et al., 2021), https://arxiv.org/abs/2105.14734",
    "ESNet": "PP-PicoDet: A Better Real-Time Object Detector on Mobile Devices (Yu et al., 2021), "
    "https://arxiv.org/abs/2111.00902",
    "EfficientNetV2": "EfficientNetV2: Smaller Models and Faster Training (Tan and Le, 2021), "
    "https://arxiv.org/abs/2104.00298",
    "FasterNet": "Run, Don't Walk: Chasing Higher FLOPS for Faster Neural Networks (Chen et al., 2023), "
    "https://arxiv.org/abs/2303.03667",
    "MicroNet": "MicroNet: Improving Image Recognition with Extremely Low FLOPs (Li et al., 2021), "
    "https://arxiv.org/abs/2108.05894",
    "MobileNeXt": "Rethinking Bottleneck Structure for Efficient Mobile Network Design (Zhou et al., 2020), "
    "https://arxiv.org/abs/2007.02269",
    "MobileNetV4": "MobileNetV4: Universal Models for the Mobile Ecosystem (Qin et al., 2024), "
    "https://arxiv.org/abs/2404.10514",
    "MobileViT": "MobileViT: Light-weight, General-purpose, and Mobile-friendly Vision Transformer "
    "(Mehta and Rastegari, 2021), https://arxiv.org/abs/2110.02178",
    "MobileViTV2": "Separable Self-attention for Mobile Vision Transformers (Mehta and Rastegari, 2022), "
    "https://arxiv.org/abs/2206.02680",
    "MobileViTV3": "MobileViTv3: Mobile-Friendly Vision Transformer with Simple and Effective Fusion of Local, "
    "Global and Input Features (Wadekar and Chaurasia, 2022), https://arxiv.org/abs/2209.15159",
    "NextViT": "Next-ViT: Next Generation Vision Transformer for Efficient Deployment in Realistic Industrial "
    "Scenarios (Li et al., 2022), https://arxiv.org/abs/2207.05501",
    "PP-HGNet": "no paper; PaddleClas's model page: "
    "https://github.com/PaddlePaddle/PaddleClas/blob/release/2.6/docs/zh_CN/models/ImageNet1k/PP-HGNet.md",
    "PP-HGNetV2": "no paper; PaddleClas's model page: "
    "https://github.com/PaddlePaddle/PaddleClas/blob/release/2.6/docs/zh_CN/models/ImageNet1k/PP-HGNetV2.md",
    "PP-LCNetV2": "no paper; PaddleClas's model page: "
    "https://github.com/PaddlePaddle/PaddleClas/blob/release/2.6/docs/zh_CN/models/ImageNet1k/PP-LCNetV2.md",
    "PVTV2": "PVT v2: Improved Baselines with Pyramid Vision Transformer (Wang et al., 2021), "
    "https://arxiv.org/abs/2106.13797",
    "PeleeNet": "Pelee: A Real-Time Object Detection System on Mobile Devices (Wang et al., 2018), "
    "https://arxiv.org/abs/1804.06882",
    "StarNet": "Rewrite the Stars (Ma et al., 2024), https://arxiv.org/abs/2403.19967",
    "SwinTransformerV2": "Swin Transformer V2: Scaling Up Capacity and Resolution (Liu et al., 2021), "
    "https://arxiv.org/abs/2111.09883",
    "TinyNet": "Model Rubik's Cube: Twisting Resolution, Depth and Width for TinyNets (Han et al., 2020), "
    "https://arxiv.org/abs/2010.14819",
    "UniFormer": "UniFormer: Unifying Convolution and Self-attention for Visual Recognition (Li et al., 2022), "
    "https://arxiv.org/abs/2201.09450",
    "VAN": "Visual Attention Network (Guo et al., 2022), https://arxiv.org/abs/2202.09741",
}
# Architectures whose paper is not their family's.
ARCH_PAPERS = {
    "InceptionV3": "Rethinking the Inception Architecture for Computer Vision (Szegedy et al., 2015), "
    "https://arxiv.org/abs/1512.00567",
    "InceptionV4": "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning "
    "(Szegedy et al., 2016), https://arxiv.org/abs/1602.07261",
}
VD_PAPER = "Bag of Tricks for Image Classification with Convolutional Neural Networks (He et al., 2018), " \
    "https://arxiv.org/abs/1812.01187"


# Evaluation pre-processing where PaddleClas's published config for the family differs from the ImageNet
# default (resize-short 256/224 of the input, cv2 bilinear, ImageNet mean/std). Facts read off those configs.
# (The 2.x rows carry their own, per model: scripts/derive_catalog_2x.py.)
HALF = [0.5, 0.5, 0.5]
FAMILY_PREPROCESS = {
    "ViT": {"mean": HALF, "std": HALF},
    "TNT": {"mean": HALF, "std": HALF, "interpolation": "bicubic", "backend": "pil", "resize_short": 248},
    "DeiT": {"interpolation": "bicubic", "backend": "pil"},
    "SwinTransformer": {"interpolation": "bicubic", "backend": "pil"},
    "Twins": {"interpolation": "bicubic", "backend": "pil"},
}


def paper_for(entry: dict) -> str | None:
    name = entry.get("arch") or entry["name"]
    if name in ARCH_PAPERS:
        return ARCH_PAPERS[name]
    if entry.get("family") == "ResNet" and "_vd" in name:  # the vd tweaks are from "Bag of Tricks"
        return VD_PAPER
    return PAPERS.get(entry.get("family"))


def build(source: Path = SOURCE, source_2x: Path = SOURCE_2X) -> list:
    rows = json.loads(source.read_text()) + json.loads(source_2x.read_text())
    names = [row["name"] for row in rows]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SystemExit(f"{source} and {source_2x} both name {', '.join(repeated)}")
    catalog = []
    for row in rows:
        entry = dict(row)
        if entry.get("family") is None and entry["name"].startswith("DARTS"):
            entry["family"] = "DARTS"  # the reference leaves the two DARTS searches without a family
        entry["paper"] = paper_for(entry)
        entry.update(FAMILY_PREPROCESS.get(entry.get("family"), {}))
        entry.setdefault("mean", IMAGENET_MEAN)
        entry.setdefault("std", IMAGENET_STD)
        entry.setdefault("interpolation", "bilinear")
        entry.setdefault("backend", "cv2")
        catalog.append(entry)
    fill_documented_accuracy(catalog)
    catalog.sort(key=lambda e: e["name"])
    return catalog


def fill_documented_accuracy(catalog: list) -> None:
    """Top-1/top-5 of the seeds' rows that have none, from PaddleClas's model pages (tests/reference/
    paddleclas_docs/, read as scripts/derive_catalog_2x.py reads them; the first page giving a figure wins).
    Only the two values change, so the rows keep their shape (tests/zoo/test_documented_top1.py checks them)."""
    from derive_catalog_2x import doc_figures

    missing = {e["name"]: e for e in catalog if e.get("top1") is None and "seed_sources" in e}
    for name, (figures, _pages) in doc_figures(set(missing)).items():
        entry = missing[name]
        filled = {k: figures[k] for k in ("top1", "top5") if entry.get(k) is None and figures.get(k) is not None}
        if "top1" in filled:
            entry.update(filled)


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    source_2x = Path(sys.argv[2]) if len(sys.argv) > 2 else SOURCE_2X
    TARGET.write_text(json.dumps(build(source, source_2x), indent=1) + "\n")
    print(f"wrote {TARGET} ({len(json.loads(TARGET.read_text()))} models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
