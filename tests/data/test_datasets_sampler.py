"""List files, class folders and the batch sampler."""

import numpy as np
import pytest

from pcls.data.datasets import ClassFolderDataset, ListDataset, build_dataset, parse_list_line, read_list_file
from pcls.data.sampler import DistributedBatchSampler
from pcls.errors import PclsError
from tests.data.conftest import write_images


@pytest.mark.parametrize(
    "line,delimiter,expected",
    [
        ("a/b.jpg 3\n", " ", ("a/b.jpg", 3)),
        ("a/b c.jpg 12", " ", ("a/b c.jpg", 12)),  # the label is after the LAST delimiter
        ("a/b.jpg\t7", None, ("a/b.jpg", 7)),
        ("x,y.jpg,4", ",", ("x,y.jpg", 4)),
    ],
)
def test_parse_list_line(line, delimiter, expected):
    assert parse_list_line(line, delimiter, False) == expected


def test_unlabeled_lines_only_where_allowed():
    assert parse_list_line("extra/img.jpg", " ", True) == ("extra/img.jpg", -1)
    with pytest.raises(ValueError, match="no label"):
        parse_list_line("extra/img.jpg", " ", False)
    with pytest.raises(ValueError, match="not a non-negative integer"):
        parse_list_line("a.jpg cat", " ", False)


def test_malformed_line_names_file_and_line(tmp_path):
    lst = tmp_path / "train_list.txt"
    lst.write_text("a.jpg 0\n\n# comment\nb.jpg 1\nc.jpg one\n")
    with pytest.raises(PclsError, match=r"train_list.txt:5: label 'one'"):
        read_list_file(lst)
    with pytest.raises(PclsError, match="not found"):
        read_list_file(tmp_path / "missing.txt")


def test_list_dataset_reads_and_checks_labels(tmp_path):
    write_images(tmp_path, ["img/a.jpg", "img/b.jpg"])
    (tmp_path / "list.txt").write_text("img/a.jpg 0\nimg/b.jpg 4\n")
    ds = build_dataset({"name": "ImageNetDataset", "image_root": str(tmp_path),
                        "cls_label_path": str(tmp_path / "list.txt")})
    assert isinstance(ds, ListDataset) and len(ds) == 2 and ds.labels.tolist() == [0, 4]
    ds.check_labels(5)
    with pytest.raises(PclsError, match="label 4, out of range for class_num 3"):
        ds.check_labels(3)
    data, label = ds[1]
    assert isinstance(data, bytes) and label == 4


def test_class_folder_dataset(tmp_path):
    write_images(tmp_path, ["tulip/1.jpg", "tulip/2.png", "daisy/x.jpg"])
    (tmp_path / "daisy" / "notes.txt").write_text("not an image")
    ds = ClassFolderDataset(tmp_path)
    assert ds.class_names == ["daisy", "tulip"]
    assert sorted(zip([p.split("/")[-1] for p in ds.paths], ds.labels.tolist())) == [("1.jpg", 1), ("2.png", 1), ("x.jpg", 0)]
    with pytest.raises(PclsError, match="unknown dataset"):
        build_dataset({"name": "ImageNetDatset", "image_root": str(tmp_path)})


def test_unreadable_images_are_replaced_and_recorded(tmp_path):
    from pcls.data.transforms import build_transforms

    write_images(tmp_path, ["good.jpg"])
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "list.txt").write_text("broken.jpg 0\nmissing.jpg 1\ngood.jpg 2\n")
    ds = ListDataset(tmp_path, tmp_path / "list.txt", build_transforms([{"DecodeImage": None}]))
    image, label, failed = ds.load(0, np.random.default_rng(0))
    assert image.ndim == 3 and label == 2 and failed[0] == 0 and set(failed) <= {0, 1}
    (tmp_path / "list2.txt").write_text("broken.jpg 0\n")
    with pytest.raises(PclsError, match="could not be read"):
        ListDataset(tmp_path, tmp_path / "list2.txt", build_transforms([{"DecodeImage": None}])).load(
            0, np.random.default_rng(0))


def _epoch(sampler):
    return [i for batch in sampler for i in batch]


def test_sampler_order_is_deterministic_per_epoch():
    s = DistributedBatchSampler(10, 3, shuffle=True, seed=1)
    first = _epoch(s)
    assert sorted(first) == list(range(10)) and first == _epoch(s)
    s.set_epoch(1)
    assert _epoch(s) != first and sorted(_epoch(s)) == list(range(10))
    assert [len(b) for b in s] == [3, 3, 3, 1] and len(s) == 4
    assert _epoch(DistributedBatchSampler(10, 3)) == list(range(10))


def test_sampler_replicas_pad_and_partition():
    parts = [_epoch(DistributedBatchSampler(10, 2, num_replicas=3, rank=r, shuffle=True, seed=5)) for r in range(3)]
    assert [len(p) for p in parts] == [4, 4, 4]  # ceil(10 / 3) = 4 each, 2 padded by wrapping
    assert set().union(*map(set, parts)) == set(range(10))
    assert sum(len(p) for p in parts) == 12


def test_sampler_drop_last_and_resume():
    s = DistributedBatchSampler(10, 3, drop_last=True, shuffle=True, seed=2)
    full = list(s)
    assert len(s) == 3 and [len(b) for b in full] == [3, 3, 3]
    s.set_start_batch(2)
    assert list(s) == full[2:]
    assert list(s) == full  # the skip applies to one pass only
    with pytest.raises(PclsError):
        s.set_start_batch(4)


def test_an_eval_sampler_reads_in_order_unless_told_and_a_train_sampler_shuffles():
    """The schema's sampler defaults differ per split: DataLoader.Eval reads its list in order (PaddleClas's
    DistributedBatchSampler default), DataLoader.Train draws a new order each epoch."""
    from pcls.data.sampler import build_sampler

    eval_order = [i for batch in build_sampler({"batch_size": 4}, 40, train=False) for i in batch]
    assert eval_order == list(range(40))
    train_order = [i for batch in build_sampler({"batch_size": 4}, 40, train=True, seed=3) for i in batch]
    assert sorted(train_order) == list(range(40)) and train_order != list(range(40))
    told = [i for batch in build_sampler({"batch_size": 4, "shuffle": True}, 40, train=False, seed=3) for i in batch]
    assert told != list(range(40))


@pytest.mark.parametrize("op, label_key, classes", [("RandomRot90", "random_rot90_orientation", 4),
                                                    ("BlurImage", "blur_image", 2)])
def test_custom_label_dataset_has_as_many_classes_as_its_label_maker_makes(tmp_path, op, label_key, classes):
    from pcls.data.datasets import build_dataset
    from pcls.data.transforms import build_transforms
    from pcls.errors import PclsError

    (tmp_path / "images.txt").write_text("a.jpg\n")
    ops = build_transforms([{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {op: None}])
    dataset = build_dataset({"name": "CustomLabelDataset", "image_root": str(tmp_path), "label_key": label_key,
                             "sample_list_path": str(tmp_path / "images.txt")}, transforms=ops)
    assert dataset.num_classes == classes
    dataset.check_labels(classes)
    with pytest.raises(PclsError, match=f"{label_key} makes {classes} classes but Arch.class_num is {classes + 1}"):
        dataset.check_labels(classes + 1)
