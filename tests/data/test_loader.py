"""build_dataloader end to end on a small demo set: batches, reproducibility, bad images, batch ops."""

import logging

import numpy as np
import pytest

from pcls.data import build_dataloader, make_demo_dataset
from pcls.errors import PclsError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return make_demo_dataset(root, train_per_class=4, val_per_class=2, size=32)


def section(demo, *, workers=0, batch_ops=None, list_key="train_list", batch_size=8, shuffle=True, **dataset):
    ds = {
        "name": "ImageNetDataset",
        "image_root": str(demo["image_root"]),
        "cls_label_path": str(demo[list_key]),
        "transform_ops": [
            {"DecodeImage": {"to_rgb": True, "channel_first": False}},
            {"RandCropImage": {"size": 24}},
            {"RandFlipImage": {"flip_code": 1}},
            {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                "order": ""}},
        ],
        **dataset,
    }
    if batch_ops:
        ds["batch_transform_ops"] = batch_ops
    return {
        "dataset": ds,
        "sampler": {"name": "DistributedBatchSampler", "batch_size": batch_size, "drop_last": False, "shuffle": shuffle},
        "loader": {"num_workers": workers, "use_shared_memory": True},
    }


def collect(bundle, epoch):
    bundle.sampler.set_epoch(epoch)
    return [(x.numpy(), y.numpy()) for x, y in bundle.loader]


def test_train_batches_shapes_and_types(demo):
    bundle = build_dataloader(section(demo), train=True, seed=0, class_num=10)
    batches = collect(bundle, 0)
    assert len(bundle.loader) == 5 == len(batches)  # 40 images / 8
    x, y = batches[0]
    assert x.shape == (8, 3, 24, 24) and x.dtype == np.float32
    assert y.shape == (8,) and y.dtype == np.int64
    assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == sorted(list(range(10)) * 4)
    assert bundle.bad_samples() == (0, [])


def test_same_seed_same_batches_whatever_the_worker_count(demo):
    a = collect(build_dataloader(section(demo), train=True, seed=7, class_num=10), 3)
    b = collect(build_dataloader(section(demo, workers=2), train=True, seed=7, class_num=10), 3)
    assert all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    c = collect(build_dataloader(section(demo), train=True, seed=8, class_num=10), 3)
    assert not np.array_equal(a[0][0], c[0][0])


def test_epochs_differ_and_resume_skips_batches(demo):
    bundle = build_dataloader(section(demo), train=True, seed=1, class_num=10)
    e0, e1 = collect(bundle, 0), collect(bundle, 1)
    assert not np.array_equal(e0[0][1], e1[0][1])
    bundle.sampler.set_start_batch(3)
    resumed = collect(bundle, 1)
    assert len(resumed) == 2 and np.array_equal(resumed[0][0], e1[3][0])
    late = build_dataloader(section(demo), train=True, seed=1, class_num=10, epoch_offset_batches=4)
    assert len(collect(late, 1)) == 1


def test_mixup_gives_soft_targets(demo):
    bundle = build_dataloader(section(demo, batch_ops=[{"MixupOperator": {"alpha": 0.2}}]), train=True, class_num=10)
    x, y = collect(bundle, 0)[0]
    assert y.shape == (8, 10) and y.dtype == np.float32 and np.allclose(y.sum(1), 1, atol=1e-6)


def test_eval_order_is_sequential(demo):
    bundle = build_dataloader(section(demo, list_key="val_list", shuffle=False), train=False, class_num=10)
    labels = np.concatenate([y for _, y in collect(bundle, 0)])
    assert labels.tolist() == sorted(labels.tolist())


def test_bad_images_are_skipped_counted_and_reported(tmp_path, demo, caplog):
    lines = demo["train_list"].read_text().splitlines()[:6]
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    lines += [f"{tmp_path}/broken.jpg 1", f"{tmp_path}/gone.jpg 2"]
    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(lines) + "\n")
    sec = section(demo, cls_label_path=str(lst), batch_size=4)
    bundle = build_dataloader(sec, train=True, class_num=10)
    with caplog.at_level(logging.WARNING, logger="pcls.data"):
        batches = collect(bundle, 0)
    assert sum(len(y) for _, y in batches) == 8  # every slot filled by a readable image
    count, paths = bundle.bad_samples()
    assert count >= 2 and any(p.endswith("broken.jpg") for p in paths) and any(p.endswith("gone.jpg") for p in paths)
    assert "unreadable" in caplog.text and "broken.jpg" in caplog.text


def test_errors_before_training(tmp_path, demo):
    with pytest.raises(PclsError, match="out of range for class_num 5; set Arch.class_num"):
        build_dataloader(section(demo), train=True, class_num=5)
    with pytest.raises(PclsError, match="out of range for class_num 5; set DataLoader.Train.dataset.class_num"):
        build_dataloader(section(demo, class_num=5), train=True)  # PaddleClas's per-dataset key, read too
    bad = tmp_path / "bad.txt"
    bad.write_text("a.jpg 0\nb.jpg\n")
    with pytest.raises(PclsError, match=r"bad.txt:2"):
        build_dataloader(section(demo, cls_label_path=str(bad)), train=True)
    unlabeled = tmp_path / "extra.txt"
    unlabeled.write_text(demo["train_list"].read_text().splitlines()[0].rsplit(" ", 1)[0] + "\n")
    bundle = build_dataloader(section(demo, cls_label_path=str(unlabeled)), train=True, allow_unlabeled=True)
    assert collect(bundle, 0)[0][1].tolist() == [-1]
    with pytest.raises(PclsError, match="need labels"):
        build_dataloader(section(demo, cls_label_path=str(unlabeled), batch_ops=[{"MixupOperator": {"alpha": 1}}]),
                         train=True, class_num=10, allow_unlabeled=True)


def test_pipeline_mistakes_surface_before_training(demo):
    sec = section(demo)
    sec["dataset"]["transform_ops"] = [{"DecodeImage": None}, {"CropImage": {"size": 64}}]
    with pytest.raises(PclsError, match="smaller than the crop"):
        build_dataloader(sec, train=True)
    sec["dataset"]["transform_ops"] = [{"ResizeImage": {"size": 8}}]
    with pytest.raises(PclsError, match="must start with DecodeImage"):
        build_dataloader(sec, train=True)
    sec = section(demo)
    sec["sampler"]["name"] = "PKSampler"
    with pytest.raises(PclsError, match="not supported"):
        build_dataloader(sec, train=True)
