"""The parts PaddleClas's PULC and attribute configs need, against hand-computed values and the PULC pages'
own examples: label_ratio + weight_ratio, TprAtFpr, ATTRMetric, the attribute post-processes, the
label-making transforms (RandomRot90, BlurImage), Padv2 / RandomCropImage and CustomLabelDataset."""

import cv2
import numpy as np
import pytest

from pcls.deploy.postprocess import build_postprocess
from pcls.engine.metrics import attribute_metrics, build_meter, tpr_at_fpr
from pcls.errors import PclsError

paddle = pytest.importorskip("paddle")


# -- label_ratio + weight_ratio ----------------------------------------------------------------------------
def _attribute_list(tmp_path, rows):
    for index in range(len(rows)):
        cv2.imwrite(str(tmp_path / f"{index}.jpg"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "list.txt").write_text("".join(f"{i}.jpg\t{','.join(map(str, r))}\n" for i, r in enumerate(rows)))
    return tmp_path / "list.txt"


def test_label_ratio_targets_carry_the_lists_positive_ratio(tmp_path):
    from pcls.data.datasets import build_dataset

    rows = [[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 1, 1]]
    dataset = build_dataset({"name": "MultiLabelDataset", "image_root": str(tmp_path), "label_ratio": True,
                             "cls_label_path": str(_attribute_list(tmp_path, rows)), "delimiter": "\t"})
    target = dataset.label(1)
    assert target.shape == (2, 3)
    np.testing.assert_array_equal(target[0], rows[1])
    np.testing.assert_allclose(target[1], [0.5, 0.25, 1.0])
    with pytest.raises(PclsError, match="label_ratio is for MultiLabelDataset"):
        build_dataset({"name": "ImageNetDataset", "image_root": str(tmp_path), "label_ratio": True,
                       "cls_label_path": str(tmp_path / "list.txt")})


def test_weight_ratio_weighs_positives_by_exp_one_minus_ratio():
    from pcls.loss import build_loss

    logits = np.array([[0.5, -1.0, 2.0], [-0.3, 0.2, 0.0]], dtype="float32")
    labels = np.array([[1, 0, 1], [0, 1, 1]], dtype="float32")
    ratio = np.array([0.2, 0.6, 0.9], dtype="float32")
    target = np.stack([labels, np.broadcast_to(ratio, labels.shape)], axis=1)
    loss = build_loss([{"MultiLabelLoss": {"weight_ratio": True, "size_sum": True}}])
    value = float(loss(paddle.to_tensor(logits), paddle.to_tensor(target))["loss"])
    p = 1 / (1 + np.exp(-logits))
    bce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    weight = np.where(labels == 1, np.exp(1 - ratio), np.exp(ratio))
    assert value == pytest.approx((bce * weight).sum(1).mean(), rel=1e-5)
    with pytest.raises(PclsError, match="label_ratio: True"):
        loss(paddle.to_tensor(logits), paddle.to_tensor(labels))


# -- metrics -----------------------------------------------------------------------------------------------
def test_tpr_at_fpr_finds_the_best_recall_within_the_false_positive_budget():
    positives = np.array([0.95, 0.9, 0.6, 0.3])
    negatives = np.array([0.8, 0.5, 0.2, 0.1, 0.05])
    # FPR <= 1/5 allows one negative (0.8) at or above the threshold: thresholds in (0.5, 0.8] keep 0.95, 0.9, 0.6
    assert tpr_at_fpr(positives, negatives, 0.2) == {"tpr": 0.75, "fpr": 0.2, "threshold": 0.5001}
    assert tpr_at_fpr(positives, negatives, 0.0)["tpr"] == 0.5  # above 0.8 only
    # what the meter gives from logits: class 1's softmax probability is the score
    meter = build_meter([{"TprAtFpr": {"max_fpr": 0.2}}, {"TopkAcc": {"topk": [1]}}], topk=[1], class_num=2)
    scores = np.concatenate([positives, negatives])
    logits = np.stack([np.zeros_like(scores), np.log(scores / (1 - scores))], axis=1).astype("float32")
    meter.update(paddle.to_tensor(logits), paddle.to_tensor(np.array([1] * 4 + [0] * 5)))
    assert meter.main == "tpr" and meter.result()["tpr"] == 0.75


def test_attr_metric_ma_and_instance_scores():
    probs = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.4, 0.3, 0.2]])
    truth = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0]])
    result = attribute_metrics(probs, truth)
    # per label (TPR + TNR) / 2: label 0: (1/2 + 1) / 2, label 1: (1 + 1) / 2, label 2: (1 + 1/2) / 2
    assert result["label_mA"] == pytest.approx((0.75 + 1.0 + 0.75) / 3)
    # per sample |pred & gt| / |pred | gt|: 1/2, 2/2, 0/1
    assert result["instance_acc"] == pytest.approx(0.5)
    assert result["instance_prec"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert result["instance_rec"] == pytest.approx((1 + 1 + 0) / 3)
    meter = build_meter([{"ATTRMetric": None}], multilabel=True)
    logits = np.log(probs / (1 - probs)).astype("float32")
    meter.update(paddle.to_tensor(logits), paddle.to_tensor(np.stack([truth, np.full_like(truth, 0.5)], axis=1)))
    assert meter.main == "label_mA" and meter.result()["label_mA"] == pytest.approx(result["label_mA"])


# -- post-processes: the PULC pages' printed examples ------------------------------------------------------
def _scores_for(bits, high=0.9, low=0.1):
    return np.array([[high if b else low for b in bits]])


def test_person_attribute_decodes_the_pages_example():
    output = [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]
    post = build_postprocess({"name": "PersonAttribute", "threshold": 0.5, "glasses_threshold": 0.3,
                              "hold_threshold": 0.6})
    (result,) = post(_scores_for(output))
    assert result["attributes"] == ["Male", "Age18-60", "Back", "Glasses: False", "Hat: False",
                                    "HoldObjectsInFront: False", "Backpack", "Upper: LongSleeve UpperPlaid",
                                    "Lower:  Trousers", "No boots"]
    assert result["output"] == output
    # glasses' own threshold (0.3): 0.4 counts as glasses, not as a hat
    scores = _scores_for(output)
    scores[0, 0] = scores[0, 1] = 0.4
    (result,) = post(scores)
    assert "Glasses: True" in result["attributes"] and "Hat: False" in result["attributes"]


def test_vehicle_attribute_names_the_best_colour_and_type():
    scores = np.full((1, 19), 0.01)
    scores[0, 0], scores[0, 13] = 0.9893, 0.9734
    (result,) = build_postprocess({"name": "VehicleAttribute"})(scores)
    assert result["attributes"] == [f"Color: (yellow, prob: {scores[0, 0]})",
                                    f"Type: (hatchback, prob: {scores[0, 13]})"]
    assert result["output"] == [1] + [0] * 12 + [1] + [0] * 5
    scores[0, 0] = 0.3
    assert build_postprocess({"name": "VehicleAttribute"})(scores)[0]["attributes"][0] == "Color unknown"


def test_table_attribute_decodes_the_pages_example():
    (result,) = build_postprocess({"name": "TableAttribute"})(_scores_for([0, 1, 1, 0, 1, 0]))
    assert result["attributes"] == ["Photo", "Little", "Black-and-White", "Blurry", "Without-Obstacles", "Tilted"]
    with pytest.raises(PclsError, match="decodes 6 attribute scores"):
        build_postprocess({"name": "TableAttribute"})(np.zeros((1, 5)))


def test_thresh_output_names_its_labels():
    post = build_postprocess({"name": "ThreshOutput", "threshold": 0.9, "label_0": "nobody", "label_1": "someone"})
    assert [r["labels"] for r in post(np.array([[0.05, 0.95], [0.2, 0.8]]))] == [["someone"], ["nobody"]]


# -- transforms and CustomLabelDataset -----------------------------------------------------------------------
def test_random_rot90_labels_its_counter_clockwise_rotation():
    from pcls.data.transforms.pulc import RandomRot90

    image = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        rotated, k = RandomRot90().labelled(image, rng)
        np.testing.assert_array_equal(rotated, np.rot90(image, k))
        seen.add(k)
    assert seen == {0, 1, 2, 3}


def test_blur_image_label_says_whether_it_blurred():
    from pcls.data.transforms.pulc import BlurImage

    image = (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    labels = []
    for _ in range(30):
        out, label = BlurImage().labelled(image, rng)
        labels.append(label)
        assert (out is image) == (label == 0)  # unblurred images pass through untouched
        if label:
            def sharpness(x):
                return np.abs(np.diff(x.astype(float), axis=1)).mean()

            assert sharpness(out) < sharpness(image)
    assert set(labels) == {0, 1}


def test_padv2_centres_and_random_crop_cuts_back():
    from pcls.data.transforms.pulc import Padv2, RandomCropImage

    image = np.full((4, 2, 3), 7, np.uint8)  # h 4, w 2
    padded = Padv2(size=[4, 6], pad_mode=1, fill_value=0)(image)  # [w, h]
    assert padded.shape == (6, 4, 3) and padded[1:5, 1:3].min() == 7 and padded.sum() == image.sum()
    assert RandomCropImage(size=[2, 4])(padded, np.random.default_rng(0)).shape == (4, 2, 3)
    with pytest.raises(PclsError, match="larger than size"):
        Padv2(size=[1, 1])(image)


def test_custom_label_dataset_takes_labels_from_the_transform(tmp_path):
    from pcls.data.datasets import build_dataset
    from pcls.data.transforms import build_transforms

    for index in range(3):
        cv2.imwrite(str(tmp_path / f"{index}.jpg"), np.zeros((6, 4, 3), np.uint8))
    (tmp_path / "images.txt").write_text("0.jpg\n1.jpg\n2.jpg\n")
    ops = build_transforms([{"DecodeImage": {"to_rgb": True, "channel_first": False}}, {"RandomRot90": None}])
    dataset = build_dataset({"name": "CustomLabelDataset", "image_root": str(tmp_path),
                             "sample_list_path": str(tmp_path / "images.txt"),
                             "label_key": "random_rot90_orientation"}, transforms=ops)
    assert len(dataset) == 3
    for index in range(3):
        image, label = dataset[index]
        assert image.shape[:2] == ((6, 4) if label in (0, 2) else (4, 6))
    with pytest.raises(PclsError, match="no transform op makes the label 'blur_image'"):
        build_dataset({"name": "CustomLabelDataset", "image_root": str(tmp_path), "label_key": "blur_image",
                       "sample_list_path": str(tmp_path / "images.txt")}, transforms=ops)
