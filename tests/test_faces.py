"""Image loading, detection and alignment on real LFW photos, and the inputs they refuse."""

import numpy as np
import pytest
from PIL import Image

from facebone.errors import InvalidImageError, NoFaceError
from facebone.faces.align import ARCFACE_TEMPLATE_112, align_face, similarity_transform
from facebone.faces.detect import FaceDetector, find_face
from facebone.faces.image import decode_image, load_image
from facebone.uploads import check_upload
from web_images import encode


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture
def real_photo(lfw_root):
    return lfw_root / "Colin_Powell" / "Colin_Powell_0009.jpg"


def test_real_photo_loads_as_rgb(real_photo):
    image = load_image(real_photo)
    assert image.shape == (250, 250, 3) and image.dtype == np.uint8


def test_detector_finds_the_centred_face_with_sane_landmarks(detector, real_photo):
    face = detector.detect(load_image(real_photo))[0]
    right_eye, left_eye, nose, mouth_right, mouth_left = face.landmarks
    assert face.detected and face.score > 0.8
    assert right_eye[0] < nose[0] < left_eye[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(mouth_right[1], mouth_left[1])
    x, y, w, h = face.box
    assert x < 125 < x + w and y < 125 < y + h


def test_alignment_moves_landmarks_onto_the_template(detector, real_photo):
    image = load_image(real_photo)
    face = detector.detect(image)[0]
    matrix = similarity_transform(face.landmarks, ARCFACE_TEMPLATE_112)
    moved = np.c_[face.landmarks, np.ones(5)] @ matrix.T
    assert np.abs(moved - ARCFACE_TEMPLATE_112).max() < 6.0
    crop = align_face(image, face.landmarks, 112)
    assert crop.shape == (112, 112, 3)
    # the eyes of the aligned face are where the template puts them: dark pixels
    assert crop[50:54, 36:41].mean() < crop.mean()


def test_found_face_in_a_larger_photo_is_mapped_back(detector, real_photo):
    image = load_image(real_photo)
    big = np.full((1500, 2000, 3), 200, np.uint8)
    big[600:850, 900:1150] = image
    face = detector.detect(big)[0]
    assert 900 < face.landmarks[2][0] < 1150 and 600 < face.landmarks[2][1] < 850


def test_no_face_is_an_error_for_uploads_and_a_counted_fallback_for_datasets(detector):
    blank = np.full((250, 250, 3), 127, np.uint8)
    with pytest.raises(NoFaceError, match="no face"):
        find_face(detector, blank, "blank.jpg", fallback=False)
    face = find_face(detector, blank, "blank.jpg", fallback=True)
    assert not face.detected
    assert 100 < face.landmarks[2][0] < 150


def _save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _write(p, b"not an image"), "not a readable image"),
        (lambda p: _write(p, b""), "empty"),
        (lambda p: _save(Image.new("RGB", (1, 1)), p, format="JPEG"), "too small"),
        (lambda p: _save(Image.new("RGB", (10000, 10000)), p, format="JPEG"), "too large"),
        (lambda p: _save(Image.new("L", (100, 100)), p, format="JPEG"), "grayscale"),
        (lambda p: _save(Image.new("RGBA", (100, 100)), p, format="PNG"), "alpha"),
    ],
    ids=["text", "empty", "1x1", "10000x10000", "grayscale", "rgba"],
)
def test_bad_images_are_refused_with_a_reason(tmp_path, make, message):
    path = make(tmp_path / "input.img")
    with pytest.raises(InvalidImageError, match=message):
        load_image(path)


def test_truncated_jpeg_is_refused(tmp_path, real_photo):
    data = real_photo.read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError, match="damaged"):
        load_image(path)


def test_grayscale_and_alpha_convert_on_request(tmp_path, real_photo):
    gray = _save(Image.open(real_photo).convert("L"), tmp_path / "gray.png")
    rgba = _save(Image.open(real_photo).convert("RGBA"), tmp_path / "rgba.png")
    assert load_image(gray, convert_color=True).shape == (250, 250, 3)
    converted = load_image(rgba, convert_color=True)
    assert np.abs(converted.astype(int) - load_image(real_photo).astype(int)).max() <= 1


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InvalidImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InvalidImageError, match="directory"):
        load_image(tmp_path)


def _damaged_dds(photo: Image.Image) -> bytes:
    """A DDS file whose pixel-format flags are zeroed: PIL raised NotImplementedError on it."""
    data = bytearray(encode(photo.convert("RGBA"), "DDS"))
    data[80:84] = bytes(4)  # after the magic (4) and 76 bytes of header: ddspf.dwFlags
    return bytes(data)


@pytest.mark.parametrize("kind", ["JPEG", "MPO", "PNG", "WEBP", "BMP"])
def test_photo_formats_decode_to_the_same_face(real_photo, kind):
    photo = Image.open(real_photo)
    options = {"quality": 100, "save_all": True, "append_images": [photo]} if kind == "MPO" else {}
    image = decode_image(encode(photo, kind, **options), "face")
    # The lossless formats give back the JPEG's pixels; JPEG at quality 100 nearly.
    assert np.abs(image.astype(int) - load_image(real_photo).astype(int)).mean() < 2


@pytest.mark.parametrize(
    "make",
    [
        lambda photo: encode(photo, "TIFF"),
        lambda photo: encode(photo, "GIF"),
        lambda photo: encode(photo, "ICO"),
        lambda photo: encode(photo, "PPM"),
        _damaged_dds,
    ],
    ids=["tiff", "gif", "ico", "ppm", "damaged-dds"],
)
def test_formats_that_are_not_photos_are_never_decoded(real_photo, make):
    data = make(Image.open(real_photo))
    with pytest.raises(InvalidImageError, match=r"not a readable image file \(JPEG, PNG"):
        decode_image(data, "face")
    with pytest.raises(InvalidImageError, match=r"face: not an image file \(JPEG, PNG"):
        check_upload(data, "face")
