"""Without worker processes the eval loader decodes in several threads (pcls/data/loader.py,
EVAL_LOADER_THREADS); batches come back in sampler order, identical to one thread's, bad images still counted."""

import numpy as np
import pytest

from pcls.data import build_dataloader, make_demo_dataset
from pcls.data import loader as loader_module


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(root, train_per_class=2, val_per_class=3, size=32)


def eval_section(demo):
    return {
        "dataset": {"name": "ImageNetDataset", "image_root": str(demo["image_root"]),
                    "cls_label_path": str(demo["val_list"]),
                    "transform_ops": [{"DecodeImage": {"to_rgb": True}}, {"CropImage": {"size": 24}},
                                      {"NormalizeImage": {"scale": "1.0/255.0", "order": ""}}, {"ToCHWImage": None}]},
        "sampler": {"name": "DistributedBatchSampler", "batch_size": 4, "drop_last": False, "shuffle": False},
        "loader": {"num_workers": 0},
    }


def batches(bundle):
    return [(x.numpy(), y.numpy()) for x, y in bundle.loader]


def test_eval_batches_from_threads_equal_one_threads_in_order(demo):
    bundle = build_dataloader(eval_section(demo), train=False, class_num=10)
    assert bundle.loader.threads == loader_module.EVAL_LOADER_THREADS > 1
    assert bundle.loader.all_labelled  # evaluation need not look at each batch's labels for the loss
    threaded = batches(bundle)
    bundle.loader.threads = 1
    single = batches(bundle)
    assert len(threaded) == len(single) == 8  # 30 images in batches of 4
    for (x, y), (x1, y1) in zip(threaded, single):
        np.testing.assert_array_equal(x, x1)
        np.testing.assert_array_equal(y, y1)
    assert build_dataloader(eval_section(demo) | {"loader": {"num_workers": 0}}, train=True,
                            class_num=10).loader.threads == 1  # training keeps one thread


def test_a_bad_image_is_still_counted_with_threads(demo, tmp_path):
    section = eval_section(demo)
    lines = open(section["dataset"]["cls_label_path"]).read().splitlines()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    listing = tmp_path / "val.txt"
    listing.write_text("\n".join(lines[:5] + [f"{bad} 1"] + lines[5:]) + "\n")
    section["dataset"]["cls_label_path"] = str(listing)
    bundle = build_dataloader(section, train=False, class_num=10)
    assert sum(len(y) for _, y in batches(bundle)) == len(lines) + 1
    listing.write_text("\n".join(lines[:5] + [lines[5].split()[0]] + lines[6:]) + "\n")  # one unlabelled line
    assert not build_dataloader(section, train=False, class_num=10, allow_unlabeled=True).loader.all_labelled
    assert bundle.bad_samples()[0] == 1 and str(bad) in bundle.bad_samples()[1][0]
