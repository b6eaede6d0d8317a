"""Regenerate pcls/zoo/catalog.json from ../shared/reference/zoo_catalog.json (run once per reference update).

Adds the default pre-processing every model exposes (mean/std, interpolation) so prediction and export
read it from one place.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "reference" / "zoo_catalog.json"
TARGET = ROOT / "pcls" / "zoo" / "catalog.json"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def build(source: Path = SOURCE) -> list:
    rows = json.loads(source.read_text())
    catalog = []
    for row in rows:
        entry = dict(row)
        # PaddleClas evaluates every ImageNet model with ImageNet mean/std and bilinear (cv2 INTER_LINEAR)
        # resizing; the few transformer configs that use bicubic do so by their config, not the catalog.
        entry.setdefault("mean", IMAGENET_MEAN)
        entry.setdefault("std", IMAGENET_STD)
        entry.setdefault("interpolation", "bilinear")
        catalog.append(entry)
    catalog.sort(key=lambda e: e["name"])
    return catalog


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    TARGET.write_text(json.dumps(build(source), indent=1) + "\n")
    print(f"wrote {TARGET} ({len(json.loads(TARGET.read_text()))} models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
