"""The flowers102 recipes end to end on a generated miniature flowers102 served over local HTTP:
`pcls data flowers102` (lists) -> `pcls train --recipe` -> `pcls eval` -> `pcls recipes table` (report).

Everything but the downloads of the real data and ImageNet weights runs as a user would run it: 102 classes,
the recipe's own list files, a 1000-class backbone checkpoint whose classifier the finetune recipes must drop,
a 102-class teacher for the distillation recipe. The inputs are shrunk (32x32, 2 iterations) to stay fast.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pcls.cli import app
from pcls.config import load_config
from pcls.recipes.report import find_results
from tests.data.flowers102_fixture import Server, mini_flowers

pytest.importorskip("paddle")
runner = CliRunner()

CLASSES = 102
# one training image per class, then a validation and an extra (tstid) split; image ids are 1-based
TRAIN_IDS = list(range(1, CLASSES + 1))
VAL_IDS = list(range(CLASSES + 1, CLASSES + 35))
EXTRA_IDS = list(range(CLASSES + 35, 2 * CLASSES + 1))
LABELS = [(i - 1) % CLASSES + 1 for i in range(1, 2 * CLASSES + 1)]
SIDE = 32  # network input side for every recipe (the recipes say 224)

# top-1 of the flowers102 quick-start table (seed 000 §1.2.3.7), one recipe per row
DOCUMENTED = {
    "flowers102-scratch": 0.2735,
    "flowers102-mv3-finetune": 0.9000,
    "flowers102-finetune": 0.9402,
    "flowers102-ssld-finetune": 0.9500,
    "flowers102-ssld-random-erasing": 0.9627,
    "flowers102-distill-mv3": 0.9647,
}
STUDENT = "MobileNetV3_large_x1_0"


def invoke(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, f"pcls {' '.join(args)} failed:\n{result.output[-4000:]}"
    return result


def random_checkpoint(arch, class_num, path):
    """A checkpoint in the zoo's file format with random weights: stands in for downloaded weights."""
    from pcls.arch.registry import create_model
    from pcls.utils.state_files import save_state_file

    model = create_model(arch, class_num=class_num, pretrained=False)
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, path)
    return str(path)


def op_index(ops, name):
    return next(i for i, op in enumerate(ops) if name in op)


def fast_overrides(name, root, output_dir, weights_dir):
    """-o overrides that point a recipe at the miniature set (its own list files) and keep it small."""
    cfg = load_config(name, is_recipe=True)
    labels_file = Path(cfg["Infer"]["PostProcess"]["class_id_map_file"]).name
    overrides = [f"Global.output_dir={output_dir}", "Global.epochs=1", "Global.max_iters=2", "Global.device=cpu",
                 f"Global.image_shape=[3, {SIDE}, {SIDE}]", "Global.print_batch_step=1",
                 f"Infer.PostProcess.class_id_map_file={root}/{labels_file}"]
    loaders = cfg["DataLoader"]
    for split, batch in (("Train", 4), ("Eval", 20)):
        dataset = loaders[split]["dataset"]
        key = f"DataLoader.{split}"
        overrides += [f"{key}.dataset.image_root={root}",
                      f"{key}.dataset.cls_label_path={root}/{Path(dataset['cls_label_path']).name}",
                      f"{key}.sampler.batch_size={batch}", f"{key}.loader.num_workers=0"]
        ops = dataset["transform_ops"]
        op = f"{key}.dataset.transform_ops"
        if split == "Train":
            overrides.append(f"{op}.{op_index(ops, 'RandCropImage')}.RandCropImage.size={SIDE}")
        else:
            overrides += [f"{op}.{op_index(ops, 'ResizeImage')}.ResizeImage.resize_short={SIDE + 4}",
                          f"{op}.{op_index(ops, 'CropImage')}.CropImage.size={SIDE}"]
    arch = cfg["Arch"]
    if arch["name"] == "DistillationModel":
        for index, member in enumerate(arch["models"]):
            (role, spec), = member.items()
            if role == "Teacher":
                path = weights_dir / f"teacher_{spec['name']}.pdparams"
                teacher = random_checkpoint(spec["name"], spec["class_num"], path)
                overrides.append(f"Arch.models.{index}.Teacher.pretrained={teacher}")
            else:
                overrides.append(f"Arch.models.{index}.{role}.pretrained=False")
    elif cfg["Global"]["pretrained_model"]:
        # the ImageNet backbone: 1000 classes, so loading it must re-initialise the 102-class classifier
        path = weights_dir / f"imagenet_{arch['name']}.pdparams"
        if not path.exists():
            random_checkpoint(arch["name"], 1000, path)
        overrides.append(f"Global.pretrained_model={path}")
    return [item for override in overrides for item in ("-o", override)]


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    """`pcls data flowers102` against the local server: the miniature set with its list files."""
    root = tmp_path_factory.mktemp("flowers102")
    server = Server(mini_flowers(labels=LABELS, trnid=TRAIN_IDS, valid=VAL_IDS, tstid=EXTRA_IDS, image_hw=(40, 48)))
    try:
        result = invoke(["data", "flowers102", "--root", str(root), "--url-base", server.url, "--json"])
    finally:
        server.close()
    return root, json.loads(result.stdout)


@pytest.fixture(scope="module")
def runs(flowers, tmp_path_factory):
    """Train every flowers102 recipe (as `pcls recipes list --group flowers102` names them) and evaluate it."""
    root, _ = flowers
    output_dir = tmp_path_factory.mktemp("output")
    weights_dir = tmp_path_factory.mktemp("weights")
    listed = json.loads(invoke(["recipes", "list", "--group", "flowers102", "--json"]).stdout)
    runs = {}
    for name in [row["name"] for row in listed]:
        overrides = fast_overrides(name, root, output_dir, weights_dir)
        # --name: four recipes share ResNet50_vd, and the default run name (Arch.name) would put them in one dir
        trained = invoke(["train", "--recipe", name, "--name", name, *overrides, "--json"])
        summary = json.loads(trained.stdout)
        run_dir = Path(summary["run_dir"])
        evaluated = invoke(["eval", "--recipe", name, *overrides, "--weights", str(run_dir / "best_model"),
                            "--json"])
        runs[name] = {"summary": summary, "log": " ".join(trained.output.split()),
                      "eval": json.loads(evaluated.stdout), "run_dir": run_dir}
        if (run_dir / "student").is_dir():  # distillation: the deployable student alone, as a plain backbone
            student = invoke(["eval", "--model", STUDENT, "--weights", str(run_dir / "student" / "best_model"),
                              "--data", str(root / "val_list.txt"), "--root", str(root),
                              "--class-num", str(CLASSES), "--json"])
            runs[name]["student_eval"] = json.loads(student.stdout)
    # a later smoke run of one recipe must not replace its real result in the table
    invoke(["train", "--recipe", "flowers102-mv3-finetune", "--smoke", "-o", f"Global.output_dir={output_dir}",
            "-o", f"Global.image_shape=[3, {SIDE}, {SIDE}]", "--json"])
    yield output_dir, runs
    # ~2.6 GB of ResNet50_vd checkpoints: free the disk for the rest of the session, not only at its end
    shutil.rmtree(output_dir, ignore_errors=True)
    shutil.rmtree(weights_dir, ignore_errors=True)


def read_list(path):
    return [line.split() for line in Path(path).read_text().splitlines()]


def test_lists_follow_the_setid_splits(flowers):
    root, result = flowers
    assert result["classes"] == CLASSES
    assert result["lists"] == {"train_list.txt": len(TRAIN_IDS), "val_list.txt": len(VAL_IDS),
                               "extra_list.txt": len(EXTRA_IDS),
                               "train_extra_list.txt": len(TRAIN_IDS) + len(EXTRA_IDS)}
    for list_name, ids in (("train_list.txt", TRAIN_IDS), ("val_list.txt", VAL_IDS), ("extra_list.txt", EXTRA_IDS)):
        assert read_list(root / list_name) == [[f"jpg/image_{i:05d}.jpg", str(LABELS[i - 1] - 1)] for i in ids]
    assert (root / "train_extra_list.txt").read_text() == (
        (root / "train_list.txt").read_text() + (root / "extra_list.txt").read_text())
    assert sorted(int(label) for _, label in read_list(root / "train_list.txt")) == list(range(CLASSES))
    # the names file the recipes' Infer.PostProcess.class_id_map_file points at: one 'id name' line per class
    assert Path(result["labels"]) == root / "labels.txt"
    assert read_list(root / "labels.txt") == [[str(i), f"class_{i + 1:03d}"] for i in range(CLASSES)]


def test_every_flowers102_recipe_is_covered(runs):
    _, done = runs
    assert set(done) == set(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_recipe_trains_and_evaluates(runs, name):
    _, done = runs
    run = done[name]
    summary, evaluated, run_dir = run["summary"], run["eval"], run["run_dir"]
    assert summary["status"] == "done" and summary["epochs_done"] == 1
    assert (run_dir / "best_model.pdparams").is_file()
    cfg = load_config(name, is_recipe=True)
    if cfg["Global"]["pretrained_model"]:
        assert "class_num 1000 -> 102" in run["log"]  # the ImageNet classifier was dropped, the rest loaded

    record = json.loads((run_dir / "result.json").read_text())
    assert record["recipe"] == name and record["smoke"] is False
    assert record["documented_top1"] == pytest.approx(DOCUMENTED[name])
    assert 0.0 <= record["top1"] <= 1.0
    assert record["delta"] == pytest.approx(record["top1"] - DOCUMENTED[name])
    assert "1 epoch vs documented 20" in record["deviations"]
    assert summary["recipe_result"]["top1"] == record["top1"]

    # same weights, same eval pipeline: pcls eval reproduces the validation top-1 the run recorded
    assert evaluated["samples"] == len(VAL_IDS) and evaluated["class_num"] == CLASSES
    assert evaluated["top1"] == pytest.approx(record["top1"], abs=1e-6)
    assert len(evaluated["per_class"]) == CLASSES
    assert evaluated["per_class"][5]["name"] == "class_006"  # names from the recipe's labels.txt
    if cfg["Arch"]["name"] == "DistillationModel":
        # the frozen teacher came whole from its checkpoint; the student checkpoint stands alone
        assert re.search(r"Teacher: ResNet50_vd \(frozen\) loaded (\d+)/\1 tensors from", run["log"])
        student = run["student_eval"]
        assert student["model"] == STUDENT and student["samples"] == len(VAL_IDS)
        assert student["class_num"] == CLASSES and 0.0 <= student["top1"] <= student["top5"] <= 1.0


def test_table_shows_achieved_against_documented(runs):
    output_dir, done = runs
    tables = json.loads(invoke(["recipes", "table", "flowers102", "--output", str(output_dir), "--json"]).stdout)
    (table,) = tables
    rows = {row["recipe"]: row for row in table["rows"]}
    assert set(rows) == set(DOCUMENTED)
    # doc order: scratch, mv3 finetune, finetune, ssld finetune, ssld + random erasing, distillation
    assert [row["recipe"] for row in table["rows"]] == sorted(DOCUMENTED, key=DOCUMENTED.get)
    for name, row in rows.items():
        achieved = json.loads((done[name]["run_dir"] / "result.json").read_text())["top1"]
        assert row["achieved_top1"] == achieved  # the real run, not the later smoke run of mv3-finetune
        assert row["documented_top1"] == pytest.approx(DOCUMENTED[name])
        assert row["delta"] == pytest.approx(achieved - DOCUMENTED[name])
        assert row["date"] and row["hardware"]
    real_run = str(done["flowers102-mv3-finetune"]["run_dir"])
    assert find_results(output_dir)["flowers102-mv3-finetune"]["run_dir"] == real_run
