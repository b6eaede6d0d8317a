"""`decode_image(..., rgb=True)` (what DecodeImage(to_rgb=True) asks for): OpenCV writes RGB itself, with the same
pixels as decoding to BGR and swapping, for every kind of file the decoders take."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from pcls.data.decode import decode_image
from pcls.data.transforms.basic import DecodeImage


def _pillow_bytes(img, fmt, mode=None, **save):
    buffer = io.BytesIO()
    picture = Image.fromarray(img)
    (picture.convert(mode) if mode else picture).save(buffer, fmt, **save)
    return buffer.getvalue()


def _exif_rotated_jpeg(img):
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise
    return _pillow_bytes(img, "JPEG", exif=exif)


@pytest.fixture(scope="module")
def encoded():
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    return {
        "jpeg": cv2.imencode(".jpg", img)[1].tobytes(),
        "grey jpeg": cv2.imencode(".jpg", img[:, :, 0])[1].tobytes(),
        "png": cv2.imencode(".png", img)[1].tobytes(),
        "png with alpha": cv2.imencode(".png", np.dstack([img, img[:, :, :1]]))[1].tobytes(),
        "16-bit png": cv2.imencode(".png", img.astype(np.uint16) * 257)[1].tobytes(),
        "webp": cv2.imencode(".webp", img)[1].tobytes(),
        "exif-rotated jpeg": _exif_rotated_jpeg(img),
        "cmyk jpeg": _pillow_bytes(img, "JPEG", "CMYK"),
        "palette gif": _pillow_bytes(img, "GIF", "P"),
    }


@pytest.mark.parametrize("kind", ["jpeg", "grey jpeg", "png", "png with alpha", "16-bit png", "webp",
                                  "exif-rotated jpeg", "cmyk jpeg", "palette gif"])
def test_rgb_decode_is_the_bgr_decode_swapped(encoded, kind, monkeypatch):
    data = encoded[kind]
    swapped = cv2.cvtColor(decode_image(data), cv2.COLOR_BGR2RGB)
    direct = decode_image(data, rgb=True)
    assert direct.shape == swapped.shape and direct.dtype == np.uint8
    np.testing.assert_array_equal(direct, swapped)
    np.testing.assert_array_equal(decode_image(data, rgb=False), decode_image(data))
    monkeypatch.delattr(cv2, "IMREAD_COLOR_RGB", raising=False)  # an OpenCV before 4.11 swaps after decoding
    np.testing.assert_array_equal(decode_image(data, rgb=True), swapped)


def test_pil_backend_honours_the_asked_order(encoded):
    data = encoded["png"]
    rgb = decode_image(data, "pil")
    np.testing.assert_array_equal(decode_image(data, "pil", rgb=True), rgb)
    np.testing.assert_array_equal(decode_image(data, "pil", rgb=False), rgb[:, :, ::-1])
    np.testing.assert_array_equal(DecodeImage(to_rgb=False, backend="pil")(data), rgb[:, :, ::-1])
    np.testing.assert_array_equal(DecodeImage(to_rgb=True)(data), decode_image(data)[:, :, ::-1])


def test_a_directory_given_as_an_image_is_refused_by_name_of_its_kind(tmp_path):
    from pcls.data.decode import FileRefused, read_image_file

    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    with pytest.raises(FileRefused, match=r"^not a regular file \(a directory\); not read$"):
        read_image_file(folder)  # was "[Errno 21] Is a directory: <descriptor number>"
