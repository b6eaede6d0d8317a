"""The built-in demo dataset: 10 classes of coloured shapes on textured backgrounds, generated deterministically.

Each class pairs one shape with one hue band; position, size, rotation, shade, background texture and
noise vary per image, so a small CNN has something to learn but reaches high accuracy in minutes on a CPU.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from pcls.utils.io import atomic_write_text

CLASSES = ("circle", "square", "triangle", "star", "plus", "ring", "hexagon", "diamond", "crescent", "bars")
_FORMAT_VERSION = 1


def _polygon(cx, cy, radius, sides, angle, inner=None):
    """Vertices of a regular polygon (or a star when `inner` gives the inner radius ratio)."""
    pts = []
    steps = sides * 2 if inner else sides
    for k in range(steps):
        r = radius * (inner if inner and k % 2 else 1.0)
        a = angle + 2 * math.pi * k / steps
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return np.round(np.array(pts)).astype(np.int32)


def _draw_shape(img, cls, cx, cy, r, angle, colour, bg_colour):
    deg = math.degrees(angle)
    if cls == "circle":
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
    elif cls == "square":
        cv2.fillPoly(img, [_polygon(cx, cy, r * 1.2, 4, angle + math.pi / 4)], colour, cv2.LINE_AA)
    elif cls == "triangle":
        cv2.fillPoly(img, [_polygon(cx, cy, r * 1.2, 3, angle - math.pi / 2)], colour, cv2.LINE_AA)
    elif cls == "star":
        cv2.fillPoly(img, [_polygon(cx, cy, r * 1.25, 5, angle - math.pi / 2, inner=0.42)], colour, cv2.LINE_AA)
    elif cls == "plus":
        w = max(2, r // 3)
        box = cv2.boxPoints(((cx, cy), (2 * r, 2 * w), deg)).astype(np.int32)
        cv2.fillPoly(img, [box], colour, cv2.LINE_AA)
        box = cv2.boxPoints(((cx, cy), (2 * w, 2 * r), deg)).astype(np.int32)
        cv2.fillPoly(img, [box], colour, cv2.LINE_AA)
    elif cls == "ring":
        cv2.circle(img, (cx, cy), r, colour, max(2, r // 3), cv2.LINE_AA)
    elif cls == "hexagon":
        cv2.fillPoly(img, [_polygon(cx, cy, r * 1.1, 6, angle)], colour, cv2.LINE_AA)
    elif cls == "diamond":  # a tall rhombus, distinct from the square at any small rotation
        pts = np.array([(0, -1.35), (0.7, 0), (0, 1.35), (-0.7, 0)])
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pts = np.round(pts @ rot.T * r + (cx, cy)).astype(np.int32)
        cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    elif cls == "crescent":
        cv2.circle(img, (cx, cy), r, colour, -1, cv2.LINE_AA)
        ox, oy = int(cx + 0.5 * r * math.cos(angle)), int(cy + 0.5 * r * math.sin(angle))
        cv2.circle(img, (ox, oy), int(r * 0.85), bg_colour, -1, cv2.LINE_AA)
    elif cls == "bars":
        w = max(2, r // 3)
        for off in (-r * 0.6, r * 0.6):
            dx, dy = -off * math.sin(angle), off * math.cos(angle)
            box = cv2.boxPoints(((cx + dx, cy + dy), (2 * r, w), deg)).astype(np.int32)
            cv2.fillPoly(img, [box], colour, cv2.LINE_AA)


def _background(rng, size):
    """A low-saturation textured background: gradient, stripes, checks or blobs, plus noise."""
    base = rng.integers(40, 215, size=3)
    img = np.empty((size, size, 3), np.float32)
    img[:] = base
    kind = int(rng.integers(4))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    amp = float(rng.uniform(15, 45))
    if kind == 0:
        a = rng.uniform(0, 2 * math.pi)
        ramp = (np.cos(a) * xx + np.sin(a) * yy) / size
        img += (amp * ramp)[..., None]
    elif kind == 1:
        period, a = rng.uniform(4, 12), rng.uniform(0, math.pi)
        img += (amp * np.sign(np.sin((np.cos(a) * xx + np.sin(a) * yy) * 2 * math.pi / period)))[..., None] * 0.5
    elif kind == 2:
        cell = int(rng.integers(4, 12))
        img += (amp * 0.5 * (((xx // cell) + (yy // cell)) % 2 * 2 - 1))[..., None]
    else:
        blobs = rng.normal(0, 1, (size // 8 + 1, size // 8 + 1)).astype(np.float32)
        img += (amp * cv2.resize(blobs, (size, size), interpolation=cv2.INTER_CUBIC))[..., None]
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    grey = img.mean(axis=2, keepdims=True)
    img = grey + 0.25 * (img - grey)  # keep it grey-ish so the shape's hue stands out
    return np.clip(img, 0, 255).astype(np.uint8)


def _render(cls_id, rng, size):
    img = _background(rng, size)
    hue = (cls_id * 18 + rng.integers(-4, 5)) % 180  # OpenCV hue is 0..179; classes 18 apart
    hsv = np.uint8([[[hue, rng.integers(170, 256), rng.integers(150, 256)]]])
    colour = tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])
    bg_colour = tuple(int(c) for c in img[size // 2, size // 2])
    r = int(size * rng.uniform(0.22, 0.34))
    margin = int(r * 1.1)
    cx = int(rng.integers(margin, size - margin + 1))
    cy = int(rng.integers(margin, size - margin + 1))
    angle = math.radians(rng.uniform(-20, 20))
    _draw_shape(img, CLASSES[cls_id], cx, cy, r, angle, colour, bg_colour)
    img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.1, 0.8))
    return img


def make_demo_dataset(root, *, train_per_class=250, val_per_class=50, size=64, seed=0, num_classes=10,
                      force=False) -> dict:
    """Write the demo set under `root` (images/, train_list.txt, val_list.txt, labels.txt).

    Reuses an existing complete set made with the same parameters. Returns the paths by name.
    """
    root = Path(root)
    if not 2 <= num_classes <= len(CLASSES):
        raise ValueError(f"num_classes must be in [2, {len(CLASSES)}]")
    params = {"version": _FORMAT_VERSION, "train_per_class": train_per_class, "val_per_class": val_per_class,
              "size": size, "seed": seed, "num_classes": num_classes}
    paths = {
        "root": root,
        "image_root": root,
        "train_list": root / "train_list.txt",
        "val_list": root / "val_list.txt",
        "labels": root / "labels.txt",
    }
    marker = root / "demo.json"
    if not force and marker.is_file() and all(p.exists() for p in paths.values()):
        try:
            if json.loads(marker.read_text()) == params:
                return paths
        except ValueError:
            pass

    # Images go to a temp folder renamed into place at the end, so an interrupted run leaves no half set.
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".images.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    lists = {"train": [], "val": []}
    for split, per_class, stream in (("train", train_per_class, 0), ("val", val_per_class, 1)):
        for cls_id in range(num_classes):
            folder = tmp / split / CLASSES[cls_id]
            folder.mkdir(parents=True)
            for k in range(per_class):
                rng = np.random.default_rng([seed, stream, cls_id, k])
                img = _render(cls_id, rng, size)
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
                name = f"{CLASSES[cls_id]}_{k:04d}.jpg"
                (folder / name).write_bytes(buf.tobytes())
                lists[split].append(f"images/{split}/{CLASSES[cls_id]}/{name} {cls_id}")
    final = root / "images"
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    atomic_write_text(paths["train_list"], "\n".join(lists["train"]) + "\n")
    atomic_write_text(paths["val_list"], "\n".join(lists["val"]) + "\n")
    atomic_write_text(paths["labels"], "".join(f"{i} {CLASSES[i]}\n" for i in range(num_classes)))
    atomic_write_text(marker, json.dumps(params))
    return paths
