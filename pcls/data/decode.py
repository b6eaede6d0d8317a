"""The one place an encoded image becomes pixels, with a pixel limit checked on the header first.

A small file can declare a huge image (a 2.6 MB PNG of 30000x30000 pixels decodes to 2.7 GB, and more in
the decoder's buffers), so the size is read from the header (Pillow's `Image.open` parses only the header)
and an image above the limit is refused before any pixel is decoded. The limit defaults to Pillow's own,
89,478,485 pixels; `PCLS_MAX_IMAGE_PIXELS` changes it. Every decode path uses `decode_image`: the
`DecodeImage` operator (training and eval loaders, the predictor; OpenCV, or Pillow for `backend: pil`) and
`pcls data check`.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat

import numpy as np

from pcls.utils.env import env_number


DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's MAX_IMAGE_PIXELS: 1024 * 1024 * 1024 // 4 // 3
MAX_PIXELS_ENV = "PCLS_MAX_IMAGE_PIXELS"
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024  # a 100-megapixel camera's JPEG is ~30 MB, a 16-bit TIFF of it ~600 MB
MAX_FILE_BYTES_ENV = "PCLS_MAX_FILE_BYTES"


class DecodeError(Exception):
    """The bytes are not an image pcls decodes (the loader skips such samples, predict reports them)."""


class Refused(DecodeError):
    """Not necessarily broken, but refused by a limit before reading or decoding (logged per file)."""


class FileRefused(Refused):
    """Not a regular file, or above the file size limit; nothing was read."""


class ImageTooLarge(Refused):
    """The header (or an operator's output size) is above the pixel limit; nothing was decoded or allocated."""


def max_image_pixels() -> int:
    """The pixel limit: $PCLS_MAX_IMAGE_PIXELS (a positive integer) or Pillow's default."""
    return env_number(MAX_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS, "a positive number of pixels", integer=True)


def max_file_bytes() -> int:
    """The size limit for one image file: $PCLS_MAX_FILE_BYTES (a positive integer) or 256 MB."""
    return env_number(MAX_FILE_BYTES_ENV, DEFAULT_MAX_FILE_BYTES, "a positive number of bytes", integer=True)


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_refusal(info: os.stat_result, limit: int) -> "str | None":
    """Why a file with this stat is not read as an image (not a regular file, or above `limit` bytes), or None.
    A FIFO or /dev/zero never ends, and a 5 GB sparse .jpg would be read whole before any other check."""
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "a special file")
        return f"not a regular file ({kind}); not read"
    if info.st_size > limit:
        return (f"{info.st_size:,} bytes is above the file size limit of {limit:,} ({MAX_FILE_BYTES_ENV} raises it); "
                "not read")
    return None


def read_image_file(path) -> bytes:
    """The bytes of an image file, checked first by `file_refusal` (raises FileRefused) on the opened file itself:
    opened non-blocking, so a FIFO never blocks the open, and never more than its checked size (+1) is read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:  # before fdopen, which refuses a directory naming its descriptor number, not the file
        info = os.fstat(fd)
        reason = file_refusal(info, max_file_bytes())
        if reason:
            raise FileRefused(reason)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(info.st_size + 1)  # read(n) allocates n bytes up front: the file's size, not the limit
    if len(data) > info.st_size:  # still being written, or a /proc file that reports size 0
        raise FileRefused(f"grew beyond its size of {info.st_size:,} bytes while being read; not read")
    return data


def check_output_size(width: int, height: int, source_hw, what: str) -> None:
    """Refuse an operator's output of width x height before it is allocated: a thin image passes the decode
    limit, but resizing its short side up multiplies its long side too (a 1x16000 PNG resized to a 256 short
    side is 4,096,000x256 pixels, 3 GB). Raises ImageTooLarge against the same limit as decoding, naming the
    source size and its aspect ratio; also refuses an empty output (a side rounded to 0)."""
    width, height = int(width), int(height)
    src_h, src_w = int(source_hw[0]), int(source_hw[1])
    limit = max_image_pixels()
    if width >= 1 and height >= 1 and width * height <= limit:
        return
    aspect = max(src_w, src_h) / max(1, min(src_w, src_h))
    source = f"a {src_w}x{src_h} image (aspect ratio {aspect:,.0f}:1)"
    if width < 1 or height < 1:
        raise ImageTooLarge(f"{what} would turn {source} into {width}x{height} pixels; not processed")
    raise ImageTooLarge(f"{what} would turn {source} into {width}x{height} = {width * height:,} pixels, above the "
                        f"limit of {limit:,} ({MAX_PIXELS_ENV} raises it); not processed")


def header_size(data: bytes, limit: int):
    """(width, height) from the image header, without decoding; None for a format Pillow does not know.

    Raises ImageTooLarge when the header declares more than `limit` pixels.
    """
    size = _pillow_header_size(data)
    if size is None:
        return None
    width, height = size
    if width * height > limit:
        raise ImageTooLarge(f"{width}x{height} = {width * height:,} pixels is above the limit of {limit:,} "
                            f"({MAX_PIXELS_ENV} raises it); not decoded")
    return width, height


def _pillow_header_size(data: bytes):
    """The size Pillow's format plugins read from the header, or None."""
    img = _pillow_open(data)
    if img is None:
        return None
    with img:
        return img.size


def _pillow_open(data: bytes):
    """A lazily decoding Pillow image of `data` (what `Image.open` does, which parses only the header), minus
    Image.open's own bomb check: pcls applies its limit itself, exactly and with the size in the message, and
    changing Pillow's global MAX_IMAGE_PIXELS would change it for the user's code too. None: not an image."""
    from PIL import Image

    prefix = data[:16]
    for load_plugins in (Image.preinit, Image.init):  # the common formats first, then every plugin
        load_plugins()
        for name in list(Image.ID):
            factory, accept = Image.OPEN[name]
            recognised = accept(prefix) if accept else True
            if not recognised or isinstance(recognised, str):  # a str: known format, but Pillow cannot read it
                continue
            try:
                return factory(io.BytesIO(data), "")
            except Exception:  # noqa: BLE001 - this plugin does not parse the header; try the next
                continue
    return None


def decode_image(data: bytes, backend: str = "cv2", rgb: "bool | None" = None) -> np.ndarray:
    """Encoded bytes -> uint8 HWC image, after the header's pixel count is checked: RGB when `rgb`, BGR when
    not; by default the decoder's own order, BGR from the "cv2" backend (OpenCV's), RGB from "pil" (Pillow's
    decoder, as PaddleClas's `backend: pil`; its JPEG pixels differ slightly from OpenCV's, and it does not
    apply EXIF rotation). OpenCV writes RGB itself (IMREAD_COLOR_RGB, OpenCV >= 4.11): the same pixels as
    decoding to BGR and swapping, without the extra pass over the image.

    Raises ImageTooLarge for an image above `max_image_pixels()` and DecodeError for anything that is not
    an image whose size can be read from its header (an image of unknown size is never decoded).
    """
    if not data:
        raise DecodeError("empty file")
    if header_size(data, max_image_pixels()) is None:
        raise DecodeError("does not decode as an image")
    if backend == "pil":
        img = _pil_decode(data)
        return img if rgb in (None, True) else _swap_red_blue(img)
    import cv2

    direct = rgb and hasattr(cv2, "IMREAD_COLOR_RGB")
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR_RGB if direct else cv2.IMREAD_COLOR)
    if img is None:
        raise DecodeError("does not decode as an image")
    return _swap_red_blue(img) if rgb and not direct else img


def _swap_red_blue(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # the same swap both ways


def _pil_decode(data: bytes) -> np.ndarray:
    img = _pillow_open(data)
    if img is None:
        raise DecodeError("does not decode as an image")
    try:
        with img:
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError) as err:  # Pillow's errors for truncated or corrupt pixel data
        raise DecodeError(f"does not decode as an image ({err})") from None


@contextlib.contextmanager
def opencv_threads(count: int):
    """OpenCV's thread count set to `count` for the block, the previous one put back after. Set to 1 around a
    fork: a forked child that touches the parent's OpenCV thread pool (which does not survive fork) can hang,
    while one with one thread inherits that setting and never uses a pool."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)
