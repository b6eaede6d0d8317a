"""Global.use_multilabel: list lines with 0/1 label vectors, MultiLabelLoss / MultiLabelAsymmetricLoss,
HammingDistance / AccuracyScore / mAP, and MultiLabelThreshOutput after export. The data are generated so
that a linear rule on the image's colour decides each label, which a small network can learn."""

import cv2
import numpy as np
import paddle
import pytest

from pcls.engine.metrics import MultiLabelMeter, average_precision
from pcls.errors import PclsError
from pcls.loss import build_loss
from tests.engine.conftest import tiny_config

RULES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, -1.0]])  # label k: RULES[k] . rgb > BIAS[k]
BIAS = np.array([128.0, 256.0, 0.0])


def write_multilabel_data(root, train=128, val=48, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lists = {}
    for split, count in (("train", train), ("val", val)):
        lines = []
        for i in range(count):
            colour = rng.uniform(0, 255, 3)
            labels = (RULES @ colour > BIAS).astype(int)
            img = np.clip(colour[None, None, :] + rng.normal(0, 8, (16, 16, 3)), 0, 255).astype(np.uint8)
            name = f"{split}_{i}.png"
            cv2.imwrite(str(root / name), img[:, :, ::-1])
            lines.append(f"{name}\t{','.join(map(str, labels))}")
        (root / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
        lists[split] = str(root / f"{split}_list.txt")
    return {"root": str(root), **lists}


def multilabel_config(data, out_dir, loss="MultiLabelLoss", epochs=8):
    cfg = tiny_config(data, out_dir, epochs=epochs, use_multilabel=True)
    cfg["Arch"]["class_num"] = 3
    for split in ("Train", "Eval"):
        cfg["DataLoader"][split]["dataset"]["name"] = "MultiLabelDataset"
        cfg["Loss"][split] = [{loss: {"weight": 1.0}}]
        cfg["Metric"][split] = [{"HammingDistance": None}, {"AccuracyScore": None}, {"mAP": None}]
    cfg["Optimizer"] = {"name": "Adam", "lr": {"name": "Cosine", "learning_rate": 0.01}}
    return cfg


def test_average_precision_by_hand():
    # ranked: pos, neg, pos, neg -> precision at the positives 1/1 and 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)


def test_meter_counts_bits_and_exact_matches():
    meter = MultiLabelMeter(["HammingDistance", "AccuracyScore", "mAP"])
    logits = paddle.to_tensor([[3.0, -3.0], [3.0, 3.0]])  # predicts [1, 0] and [1, 1]
    meter.update(logits, paddle.to_tensor([[1, 0], [1, 0]]), paddle.to_tensor(0.5))
    result = meter.result()
    assert result["hamming_distance"] == pytest.approx(1 / 4) and result["accuracy_score"] == pytest.approx(1 / 2)
    assert result["loss"] == pytest.approx(0.5) and result["samples"] == 2
    restored = MultiLabelMeter(["HammingDistance", "AccuracyScore", "mAP"])
    restored.load_state(meter.state())
    assert restored.result() == result


def test_losses_against_formulas():
    logits = paddle.to_tensor([[2.0, -1.0], [0.5, 0.0]])
    target = paddle.to_tensor([[1, 0], [0, 1]])
    p = 1 / (1 + np.exp(-logits.numpy()))
    t = target.numpy()
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    assert float(build_loss([{"MultiLabelLoss": {}}])(logits, target)["loss"]) == pytest.approx(bce.mean(), rel=1e-5)
    summed = build_loss([{"MultiLabelLoss": {"size_sum": True}}])(logits, target)["loss"]
    assert float(summed) == pytest.approx(bce.sum(1).mean(), rel=1e-5)
    neg = np.minimum(1 - p + 0.05, 1)
    asl = -(t * (1 - p) ** 1 * np.log(p) + (1 - t) * (1 - neg) ** 4 * np.log(neg))
    value = build_loss([{"MultiLabelAsymmetricLoss": {}}])(logits, target)["loss"]
    assert float(value) == pytest.approx(asl.sum(), rel=1e-5)
    with pytest.raises(PclsError, match=r"targets of shape \[N, 2\]"):
        build_loss([{"MultiLabelLoss": {}}])(logits, paddle.to_tensor([0, 1]))


def test_config_mismatches_are_one_line(tmp_path, tinynet):
    from pcls.config.schema import validate

    data = {"root": str(tmp_path), "train": "t.txt", "val": "v.txt"}
    cfg = multilabel_config(data, tmp_path)
    cfg["Loss"]["Train"] = [{"CELoss": {"weight": 1.0}}]
    with pytest.raises(PclsError, match="Loss.Train: CELoss with Global.use_multilabel: True; use one of"):
        validate(cfg)
    cfg = multilabel_config(data, tmp_path)
    cfg["Global"]["use_multilabel"] = False
    with pytest.raises(PclsError, match="MultiLabelLoss with Global.use_multilabel: False"):
        validate(cfg)


def test_multilabel_list_errors_name_file_and_line(tmp_path):
    from pcls.data.lists import read_multilabel_list

    bad = tmp_path / "l.txt"
    bad.write_text("a.png\t0,1,1\nb.png\t0,1\n")
    with pytest.raises(PclsError, match=r"l.txt:2: 2 labels, but the first line has 3"):
        read_multilabel_list(bad)
    bad.write_text("a.png\t0,2,1\n")
    with pytest.raises(PclsError, match=r"l.txt:1: labels '0,2,1' are not comma-separated 0/1"):
        read_multilabel_list(bad)


@pytest.mark.parametrize("loss", ["MultiLabelLoss", pytest.param("MultiLabelAsymmetricLoss", marks=pytest.mark.slow)])
def test_multilabel_training_learns_the_rule(tmp_path, tinynet, loss):
    from pcls.engine.trainer import train

    data = write_multilabel_data(tmp_path / "data")
    summary = train(multilabel_config(data, tmp_path / "out", loss=loss))
    final = summary["final"]
    assert summary["best"]["metric"] == "val_mAP"
    assert final["val_mAP"] > 0.9 and final["val_hamming_distance"] < 0.15
    assert final["val_accuracy_score"] > 0.5  # every bit right; chance is 1/8


@pytest.mark.slow
def test_multilabel_eval_export_and_predict(tmp_path, tinynet):
    from pcls.deploy.export import export, request_from_config
    from pcls.deploy.predictor import Predictor
    from pcls.engine.evaluator import evaluate
    from pcls.engine.run_config import validated
    from pcls.engine.trainer import train

    data = write_multilabel_data(tmp_path / "data")
    cfg = multilabel_config(data, tmp_path / "out")
    cfg["Infer"] = {"PostProcess": {"name": "MultiLabelThreshOutput", "threshold": 0.5}}
    cfg["Global"]["image_shape"] = [3, 16, 16]  # the images go in as they are (no crop)
    summary = train(cfg)
    weights = f"{summary['run_dir']}/best_model"
    result = evaluate(cfg, weights=weights, out_dir=tmp_path / "eval")
    assert result["mAP"] > 0.9 and len(result["per_class"]) == 3
    request = request_from_config(validated(cfg), tmp_path / "export", weights)
    export(request)
    predictor = Predictor(tmp_path / "export")
    lines = open(data["val"]).read().split("\n")[:12]
    paths = [f"{data['root']}/{line.split()[0]}" for line in lines]
    truth = [{i for i, v in enumerate(line.split()[1].split(",")) if v == "1"} for line in lines]
    predicted = [set(r["class_ids"]) for r in predictor.predict(paths)]
    assert sum(p == t for p, t in zip(predicted, truth)) >= 9
