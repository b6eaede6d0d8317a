"""Access to tests/reference/ (the measured facts pcls must match) for the tests.

The data lives inside the repository (tests/reference/README.md says where it came from); PCLS_REFERENCE_DIR
points the tests at another copy of the same layout. Two sets share one API: the 210 models of the
PaddleClas 1.x documents (`model_specs.txt`, `state_dicts.json.gz`, `fixtures/`) and the 112 newer PaddleClas
2.x models (the same files with `_2x`).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path(os.environ.get("PCLS_REFERENCE_DIR", REPO / "tests" / "reference"))
# file suffix of each reference set: the seeds' models and the newer PaddleClas 2.x models
REFERENCE_SETS = ("", "_2x")
WEIGHTS_SEED = 20261122
_NORMAL_002_KEYS = (
    "pos_embed",
    "cls_token",
    "dist_token",
    "relative_position_bias_table",
    "pos_drop",
    "attention_biases",
    "pos_emb",
)


@lru_cache(maxsize=1)
def model_specs() -> dict:
    """name -> input size, for every model in scope."""
    specs = {}
    for suffix in REFERENCE_SETS:
        for line in (REFERENCE_DIR / f"model_specs{suffix}.txt").read_text().split():
            name, size = line.split(":")
            specs[name] = int(size)
    return specs


@lru_cache(maxsize=1)
def newer_models() -> frozenset:
    """The 112 PaddleClas 2.x models (the `_2x` set)."""
    return frozenset(line.split(":")[0] for line in (REFERENCE_DIR / "model_specs_2x.txt").read_text().split())


@lru_cache(maxsize=1)
def _state_dicts() -> dict:
    merged = {}
    for suffix in REFERENCE_SETS:
        with gzip.open(REFERENCE_DIR / f"state_dicts{suffix}.json.gz", "rt") as fh:
            merged.update(json.load(fh))
    return merged


def state_dict_spec(name: str) -> dict:
    """key -> (shape tuple, dtype) of the reference model."""
    return {key: (tuple(shape), dtype) for key, shape, dtype in _state_dicts()[name]["keys"]}


def trainable_params(name: str) -> int:
    return _state_dicts()[name]["trainable_params"]


@lru_cache(maxsize=1)
def families() -> dict:
    """model name -> family: the zoo catalog's for the seeds' models; for the 2.x models the name's first
    `_`-separated part (PPHGNetV2_B0 -> PPHGNetV2, MobileNetV4_conv_small -> MobileNetV4)."""
    rows = json.loads((REFERENCE_DIR / "zoo_catalog.json").read_text())
    named = {row["arch"]: row["family"] for row in rows if row.get("arch")}
    named.update({name: name.split("_")[0] for name in newer_models()})
    return named


def fixture_path(name: str) -> Path:
    folder = "fixtures_2x" if name in newer_models() else "fixtures"
    return REFERENCE_DIR / folder / f"{name}.npy"


def has_fixture(name: str) -> bool:
    return fixture_path(name).exists()


def fixture_logits(name: str) -> np.ndarray:
    return np.load(fixture_path(name))


def fixture_input(size: int, seed: int = WEIGHTS_SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, size, size)).astype("float32")


def rule_value(key: str, shape, seed: int = WEIGHTS_SEED) -> np.ndarray:
    """The deterministic value the reference README assigns to one float32 state-dict entry."""
    shape = tuple(shape)
    rng = np.random.default_rng((zlib.crc32(key.encode("utf-8")) ^ seed) & 0xFFFFFFFF)
    if any(token in key for token in _NORMAL_002_KEYS):
        value = rng.standard_normal(shape) * 0.02
    elif key.endswith("_variance"):
        value = rng.uniform(0.5, 1.5, shape)
    elif key.endswith("_mean"):
        value = rng.standard_normal(shape) * 0.1
    elif len(shape) <= 1:
        value = rng.standard_normal(shape) * 0.1 if key.endswith("bias") else rng.uniform(0.5, 1.5, shape)
    else:
        fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
        value = rng.standard_normal(shape) / np.sqrt(fan_in)
    return value.astype("float32")


def fill_weights(model, seed: int = WEIGHTS_SEED) -> None:
    """Fill every float32 entry of model.state_dict() by the reference weights rule."""
    import paddle

    state = model.state_dict()
    new_state = {}
    for key, tensor in state.items():
        if tensor.dtype == paddle.float32:
            new_state[key] = rule_value(key, tensor.shape, seed)
    model.set_state_dict(new_state)


def ci_subset() -> list:
    """One model per family with a fixture: the one with the fewest state elements (fast in CI)."""
    sizes = {name: entry["state_elements"] for name, entry in _state_dicts().items()}
    best = {}
    for name in model_specs():
        if not has_fixture(name):
            continue
        family = families().get(name, name)
        if family not in best or sizes[name] < sizes[best[family]]:
            best[family] = name
    return sorted(best.values())
