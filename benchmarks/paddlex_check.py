"""Does PaddleX 3 run a pcls export as pcls does? Same top-1, scores within 1e-5, on the same images.

    python benchmarks/paddlex_check.py                      # PPLCNet_x1_0 and ResNet50_vd, deterministic weights
    python benchmarks/paddlex_check.py --paddlex-python /path/to/venv/bin/python --model PPHGNetV2_B0

PaddleX is a yardstick, never a dependency: it runs from its own virtual environment (default
/work/yardstick/paddlex-venv, or $PCLS_PADDLEX_PYTHON), in a subprocess, through its public API
(`paddlex.create_model(model_name=<PaddleX's name>, model_dir=EXPORT).predict(paths)`). Skips (exit 0, saying
why) when that environment or PaddleX is absent. pcls's side is `pcls.Predictor` on the same folder.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PADDLEX_PYTHON = "/work/yardstick/paddlex-venv/bin/python"
TOLERANCE = 1e-5

# Run inside PaddleX's environment: argv = model name, export folder, image paths; prints one JSON row per image
PADDLEX_SIDE = r"""
import json, sys
from paddlex import create_model
name, folder, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
model = create_model(model_name=name, model_dir=folder, device="cpu")
for res in model.predict(paths, batch_size=1):
    row = res.json.get("res", res.json) if hasattr(res, "json") else dict(res)
    ids, scores = row["class_ids"], row["scores"]
    ids = ids[0] if ids and isinstance(ids[0], list) else ids  # one image's ids come nested in some versions
    scores = scores[0] if scores and isinstance(scores[0], list) else scores
    print("PCLS_ROW " + json.dumps({"class_ids": [int(i) for i in ids], "scores": [float(s) for s in scores]}))
"""


def paddlex_python(given) -> str | None:
    python = given or os.environ.get("PCLS_PADDLEX_PYTHON") or DEFAULT_PADDLEX_PYTHON
    if not Path(python).exists():
        return None
    probe = subprocess.run([python, "-c", "import paddlex"], capture_output=True, text=True)
    return python if probe.returncode == 0 else None


def export_seeded(arch: str, out: Path) -> Path:
    """`pcls export` of `arch` with the test suite's deterministic weights (default init makes deep networks'
    logits vanish, every class alike, and top-1 a tie)."""
    import pcls
    from pcls.deploy.export import ExportRequest, export
    from pcls.utils.state_files import save_state_file

    sys.path.insert(0, str(REPO))
    from tests.reference import fill_weights

    model = pcls.create_model(arch)
    fill_weights(model)
    weights = out.parent / f"{arch}.pdparams"
    save_state_file({k: v.numpy() for k, v in model.state_dict().items()}, weights)
    export(ExportRequest(model_name=arch, out_dir=out, weights=str(weights), fmt="paddle"))
    return out


def check(arch: str, python: str, work: Path, images: list) -> dict:
    from pcls.deploy.paddlex_format import paddlex_name
    from pcls.deploy.predictor import Predictor

    theirs = paddlex_name(arch)
    if theirs is None:
        return {"model": arch, "status": "skipped: PaddleX has no such classifier"}
    folder = export_seeded(arch, work / arch)
    ours = Predictor(folder, runtime="paddle", topk=5).predict(images)
    env = {**os.environ, "PADDLE_PDX_DISABLE_MODEL_SOURCE_CHECK": "True"}
    env.pop("PYTHONPATH", None)
    run = subprocess.run([python, "-c", PADDLEX_SIDE, theirs, str(folder), *map(str, images)],
                         capture_output=True, text=True, env=env, timeout=1800)
    if run.returncode != 0:
        return {"model": arch, "status": f"PaddleX failed: {run.stderr.strip().splitlines()[-1:]}"}
    rows = [json.loads(line[len("PCLS_ROW "):]) for line in run.stdout.splitlines() if line.startswith("PCLS_ROW ")]
    same_top1 = all(a["class_ids"][0] == b["class_ids"][0] for a, b in zip(ours, rows)) and len(rows) == len(ours)
    worst = max(float(np.max(np.abs(np.asarray(a["scores"][:5]) - np.asarray(b["scores"][:5]))))
                for a, b in zip(ours, rows))
    ok = same_top1 and worst <= TOLERANCE
    return {"model": arch, "paddlex_name": theirs, "images": len(rows), "same_top1": same_top1,
            "max_score_diff": worst, "status": "ok" if ok else "MISMATCH"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="PPLCNet_x1_0,ResNet50_vd", help="comma-separated pcls architectures")
    parser.add_argument("--paddlex-python", help=f"PaddleX's interpreter (default {DEFAULT_PADDLEX_PYTHON})")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    python = paddlex_python(args.paddlex_python)
    if python is None:
        print("skipped: no PaddleX environment (install paddlex, pypdfium2 and opencv-contrib-python into a venv "
              f"outside the repository, e.g. {DEFAULT_PADDLEX_PYTHON}, or set PCLS_PADDLEX_PYTHON)")
        return 0
    from pcls.deploy.bench import make_jpegs

    results = []
    with tempfile.TemporaryDirectory(prefix="pcls-paddlex-check-") as tmp:
        work = Path(tmp)
        images = make_jpegs(work / "jpegs", count=args.images)
        for arch in args.model.split(","):
            results.append(check(arch, python, work, images))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if all(r["status"] in ("ok",) or r["status"].startswith("skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
