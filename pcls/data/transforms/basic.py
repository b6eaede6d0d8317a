"""Decode, resize, crop, flip, pad, rotate, normalise: the operators of every ImageNet-style pipeline.

Images stay uint8 HWC (OpenCV) until NormalizeImage, which scales, normalises and (when the pipeline
wants CHW) transposes in one float32 pass.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pcls.data.decode import DecodeError, check_output_size, decode_image, read_image_file  # noqa: F401
from pcls.data.transforms.registry import Operator, pair, parse_number, register_op
from pcls.errors import PclsError, short_repr

_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}
PIL_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "lanczos", "hamming")


class Resizer:
    """One resize implementation for every operator: OpenCV or PIL-compatible modes, or 'random'."""

    def __init__(self, interpolation=None, backend="cv2"):
        backend = (backend or "cv2").lower()
        if backend not in ("cv2", "pil"):
            raise PclsError(f"backend {short_repr(backend)} is not supported; use 'cv2' or 'pil'")
        names = _CV2_INTERP if backend == "cv2" else PIL_INTERPOLATIONS
        interp = (interpolation or "bilinear").lower() if isinstance(interpolation, (str, type(None))) else interpolation
        if isinstance(interp, int) and backend == "cv2":  # a raw cv2 flag in an old config
            interp = {v: k for k, v in _CV2_INTERP.items()}.get(interp, "bilinear")
        if interp != "random" and interp not in names:
            raise PclsError(f"interpolation {short_repr(interpolation)} is not one of {', '.join(names)}, random")
        self.backend, self.interp, self.names = backend, interp, list(names)

    def __call__(self, img, size_wh, rng=None):
        interp = self.interp
        if interp == "random":
            interp = self.names[int(rng.integers(len(self.names)))] if rng is not None else "bilinear"
        w, h = size_wh
        check_output_size(w, h, img.shape[:2], "resizing")
        if self.backend == "cv2":
            return cv2.resize(img, (int(w), int(h)), interpolation=_CV2_INTERP[interp])
        from PIL import Image

        pil_mode = getattr(Image.Resampling, interp.upper())
        return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((int(w), int(h)), pil_mode))


@register_op
class DecodeImage(Operator):
    """Bytes (or a path, or an already decoded HWC array) -> uint8 HWC image, RGB when to_rgb.

    `backend` picks the decoder: "cv2" (OpenCV) or "pil" (Pillow, whose JPEG pixels differ slightly). `to_np`
    is accepted for PaddleClas configs: pcls operators always pass numpy arrays, so it changes nothing.
    """

    def __init__(self, to_rgb=True, to_np=False, channel_first=False, backend="cv2"):
        self.to_rgb = bool(to_rgb)
        self.channel_first = bool(channel_first)
        self.backend = (backend or "cv2").lower()
        if self.backend not in ("cv2", "pil"):
            raise PclsError(f"DecodeImage backend {short_repr(backend)} is not supported; use 'cv2' or 'pil'")

    def __call__(self, data, rng=None):
        if isinstance(data, np.ndarray):  # already decoded (e.g. by the predictor): keep its colour order
            img = data
        else:
            if isinstance(data, str):
                data = read_image_file(data)  # refuses a FIFO, a device or an oversized file before reading
            # refuses an image whose header declares too many pixels
            img = decode_image(data, self.backend, rgb=self.to_rgb)
        if self.channel_first:
            img = img.transpose((2, 0, 1))
        return img

    def layout_after(self, layout):
        return "chw" if self.channel_first else "hwc"


@register_op
class ResizeImage(Operator):
    """Resize to `size` (int or [w, h]) or so the short side equals `resize_short` (aspect kept)."""

    def __init__(self, size=None, resize_short=None, interpolation=None, backend="cv2", return_numpy=True):
        if (size is None) == (resize_short is None):
            raise PclsError("ResizeImage needs exactly one of size or resize_short")
        self.resize_short = int(resize_short) if resize_short is not None else None
        if self.resize_short is not None and self.resize_short <= 0:
            raise PclsError(f"ResizeImage resize_short must be > 0, got {resize_short}")
        self.size = pair(size, "ResizeImage size") if size is not None else None
        self.resize = Resizer(interpolation, backend)

    def target_size(self, img_h, img_w):
        if self.resize_short is not None:
            percent = self.resize_short / min(img_w, img_h)
            return int(round(img_w * percent)), int(round(img_h * percent))
        return self.size

    def __call__(self, img, rng=None):
        return self.resize(img, self.target_size(*img.shape[:2]), rng)


@register_op
class CropImage(Operator):
    """Centre crop to `size` (int or [w, h]); start = (image - crop) // 2."""

    def __init__(self, size):
        self.w, self.h = pair(size, "CropImage size")

    def __call__(self, img, rng=None):
        img_h, img_w = img.shape[:2]
        if img_w < self.w or img_h < self.h:
            raise PclsError(
                f"CropImage: image {img_w}x{img_h} is smaller than the crop {self.w}x{self.h}; "
                "put a ResizeImage (resize_short >= crop) before it"
            )
        x0 = (img_w - self.w) // 2
        y0 = (img_h - self.h) // 2
        return img[y0 : y0 + self.h, x0 : x0 + self.w]


@register_op
class CropImageAtRatio(Operator):
    """Centre square of size / (size + pad) of the short side, resized to size x size (EfficientNetV2's eval)."""

    def __init__(self, size, pad, interpolation="bilinear"):
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise PclsError(f"CropImageAtRatio size must be a positive integer, got {short_repr(size)}")
        if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
            raise PclsError(f"CropImageAtRatio pad must be an integer >= 0, got {short_repr(pad)}")
        self.size, self.ratio = size, size / (size + pad)
        self.resize = Resizer(interpolation)

    def __call__(self, img, rng=None):
        img_h, img_w = img.shape[:2]
        side = max(1, int(self.ratio * min(img_h, img_w)))
        y0, x0 = (img_h - side) // 2, (img_w - side) // 2
        return self.resize(img[y0 : y0 + side, x0 : x0 + side], (self.size, self.size), rng)


@register_op
class RandCropImage(Operator):
    """Random-resized crop: area fraction ~ U(scale), aspect w/h ~ U(ratio), clipped to fit; then resize."""

    def __init__(self, size, scale=None, ratio=None, interpolation=None, use_log_aspect=False, backend="cv2"):
        self.size = pair(size, "RandCropImage size")
        self.scale = tuple(float(s) for s in (scale if scale is not None else (0.08, 1.0)))
        self.ratio = tuple(float(r) for r in (ratio if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)))
        if len(self.scale) != 2 or not 0 < self.scale[0] <= self.scale[1]:
            raise PclsError(f"RandCropImage scale must be [low, high] with 0 < low <= high, got {scale}")
        if len(self.ratio) != 2 or not 0 < self.ratio[0] <= self.ratio[1]:
            raise PclsError(f"RandCropImage ratio must be [low, high] with 0 < low <= high, got {ratio}")
        self.use_log_aspect = bool(use_log_aspect)
        self.resize = Resizer(interpolation, backend)

    def crop_box(self, img_h, img_w, rng):
        """(x0, y0, w, h) of the crop, following PaddleClas's single-draw (no retry) rule."""
        if self.use_log_aspect:
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        else:
            aspect = rng.uniform(*self.ratio)
        fw, fh = math.sqrt(aspect), 1.0 / math.sqrt(aspect)
        # the largest area fraction for which a crop of this aspect still fits inside the image
        bound = min((img_w / img_h) / (fw * fw), (img_h / img_w) / (fh * fh))
        lo, hi = min(self.scale[0], bound), min(self.scale[1], bound)
        side = math.sqrt(img_w * img_h * rng.uniform(lo, hi))
        w = min(img_w, max(1, int(side * fw)))
        h = min(img_h, max(1, int(side * fh)))
        x0 = int(rng.integers(0, img_w - w + 1))
        y0 = int(rng.integers(0, img_h - h + 1))
        return x0, y0, w, h

    def __call__(self, img, rng):
        x0, y0, w, h = self.crop_box(img.shape[0], img.shape[1], rng)
        return self.resize(img[y0 : y0 + h, x0 : x0 + w], self.size, rng)


@register_op
class RandFlipImage(Operator):
    """Flip with probability 0.5; flip_code as cv2.flip: 1 horizontal, 0 vertical, -1 both."""

    def __init__(self, flip_code=1):
        if flip_code not in (-1, 0, 1):
            raise PclsError(f"RandFlipImage flip_code must be 1, 0 or -1, got {short_repr(flip_code)}")
        self.flip_code = flip_code

    def __call__(self, img, rng):
        if rng.integers(0, 2) == 1:
            return cv2.flip(img, self.flip_code)
        return img


@register_op
class NormalizeImage(Operator):
    """(img * scale - mean) / std in float32 (or float16), HWC or CHW out, optional zero 4th channel.

    Computed as img * (scale/std) + (-mean/std) per channel, writing straight into a CHW buffer when
    the output is CHW, so uint8 HWC -> normalised float32 CHW is a single pass.
    """

    def __init__(self, scale=None, mean=None, std=None, order="chw", output_fp16=False, channel_num=3):
        scale = parse_number(scale, "NormalizeImage scale") if scale is not None else 1.0 / 255.0
        mean = np.asarray(mean if mean is not None else [0.485, 0.456, 0.406], dtype=np.float64)
        std = np.asarray(std if std is not None else [0.229, 0.224, 0.225], dtype=np.float64)
        if mean.shape != std.shape or mean.ndim != 1:
            raise PclsError(f"NormalizeImage mean and std must be lists of the same length, got {mean} and {std}")
        if np.any(std == 0):
            raise PclsError(f"NormalizeImage std must not contain 0, got {std.tolist()}")
        if channel_num not in (3, 4):
            raise PclsError(f"NormalizeImage channel_num must be 3 or 4, got {channel_num}")
        self.order = "chw" if str(order).lower() == "chw" else "hwc"
        self.gain = (scale / std).astype(np.float32)
        self.bias = (-mean / std).astype(np.float32)
        self.output_fp16 = bool(output_fp16)
        self.channel_num = int(channel_num)

    def layout_after(self, layout):
        return self.order

    def __call__(self, img, rng=None):
        if img.ndim != 3:
            raise PclsError(f"NormalizeImage expects an HWC colour image, got shape {img.shape}")
        h, w, c = img.shape
        if c != self.gain.size:
            raise PclsError(f"NormalizeImage has {self.gain.size} mean/std values but the image has {c} channels")
        extra = self.channel_num - c
        if self.order == "chw":
            out = np.empty((c + extra, h, w), dtype=np.float32)
            for ch in range(c):
                np.multiply(img[:, :, ch], self.gain[ch], out=out[ch], casting="unsafe")
                out[ch] += self.bias[ch]
            if extra:
                out[c:] = 0
        else:
            out = np.empty((h, w, c + extra), dtype=np.float32)
            np.multiply(img, self.gain, out=out[:, :, :c], casting="unsafe")
            out[:, :, :c] += self.bias
            if extra:
                out[:, :, c:] = 0
        return out.astype(np.float16) if self.output_fp16 else out


@register_op
class ToCHWImage(Operator):
    """HWC -> CHW."""

    def __init__(self):
        pass

    def __call__(self, img, rng=None):
        return img.transpose((2, 0, 1))

    def layout_after(self, layout):
        return "chw"


_BORDER = {
    "constant": cv2.BORDER_CONSTANT,
    "edge": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
}


@register_op
class Pad(Operator):
    """Pad the borders: padding int (all sides), [left/right, top/bottom] or [left, top, right, bottom]."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        if isinstance(padding, int):
            padding = [padding] * 4
        padding = list(padding)
        if len(padding) == 2:
            padding = [padding[0], padding[1], padding[0], padding[1]]
        if len(padding) != 4 or any(int(p) < 0 for p in padding):
            raise PclsError(f"Pad padding must be an int or 2 or 4 non-negative ints, got {padding}")
        if padding_mode not in _BORDER:
            raise PclsError(f"Pad padding_mode must be one of {', '.join(_BORDER)}, got {short_repr(padding_mode)}")
        self.left, self.top, self.right, self.bottom = (int(p) for p in padding)
        self.fill = fill
        self.mode = _BORDER[padding_mode]

    def __call__(self, img, rng=None):
        h, w = img.shape[:2]
        check_output_size(w + self.left + self.right, h + self.top + self.bottom, (h, w), "Pad")
        fill = self.fill if isinstance(self.fill, (list, tuple)) else [self.fill] * 3
        return cv2.copyMakeBorder(img, self.top, self.bottom, self.left, self.right, self.mode, value=list(fill))


@register_op
class RandomRotation(Operator):
    """Rotate by an angle ~ U(-degrees, degrees) (or U(d0, d1)) about the centre; uncovered pixels = fill."""

    def __init__(self, degrees, interpolation="nearest", expand=False, center=None, fill=0):
        if isinstance(degrees, (int, float)):
            if degrees < 0:
                raise PclsError(f"RandomRotation degrees must be >= 0, got {degrees}")
            degrees = (-float(degrees), float(degrees))
        self.degrees = tuple(float(d) for d in degrees)
        if (interpolation or "nearest") not in _CV2_INTERP:
            raise PclsError(f"RandomRotation interpolation must be one of {', '.join(_CV2_INTERP)}")
        self.interp = _CV2_INTERP[interpolation or "nearest"]
        self.expand = bool(expand)
        self.center = center
        self.fill = fill

    def __call__(self, img, rng):
        angle = rng.uniform(*self.degrees)
        h, w = img.shape[:2]
        cx, cy = self.center if self.center is not None else ((w - 1) * 0.5, (h - 1) * 0.5)
        m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)  # positive angle = counter-clockwise, as PIL
        out_w, out_h = w, h
        if self.expand:
            cos, sin = abs(m[0, 0]), abs(m[0, 1])
            out_w, out_h = int(math.ceil(h * sin + w * cos)), int(math.ceil(h * cos + w * sin))
            check_output_size(out_w, out_h, (h, w), "RandomRotation(expand)")
            m[0, 2] += (out_w - w) / 2
            m[1, 2] += (out_h - h) / 2
        fill = self.fill if isinstance(self.fill, (list, tuple)) else [self.fill] * 3
        return cv2.warpAffine(img, m, (out_w, out_h), flags=self.interp, borderValue=list(fill))
