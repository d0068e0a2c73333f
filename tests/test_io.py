"""risc_tf.io: finding, reading and writing users' own image files (every file made in tmp_path)."""

from __future__ import annotations

import doctest
import importlib.util
import inspect
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import risc_tf.io as rio
from devdata import write_acr_nema
from risc_tf.io import (
    ImageReadError,
    ImageRecord,
    find_image_files,
    iter_images,
    load_images,
    read_image,
    read_record,
    write_upright_copy,
)

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)
needs_pydicom = pytest.mark.skipif(
    importlib.util.find_spec("pydicom") is None,
    reason='pydicom is not installed (pip install "risc_tf[dicom]")',
)


def _save(path: Path, array: np.ndarray, **options) -> Path:
    Image.fromarray(array).save(path, **options)
    return path


def _error(path: Path) -> str:
    record = read_record(path)
    assert not record.ok and record.image is None
    return record.error


def _quadrants(h: int = 32, w: int = 48) -> np.ndarray:
    """A grayscale image whose orientation is obvious even after JPEG: one bright corner."""
    image = np.full((h, w), 40, np.uint8)
    image[: h // 2, : w // 3] = 220
    return image


# -- reading: values, dtypes, conventions -----------------------------------------------


def test_png_8_and_16_bit_grayscale_round_trip_exactly(tmp_path):
    gray8 = RNG.integers(0, 256, (7, 9), dtype=np.uint8)
    gray16 = RNG.integers(0, 65536, (7, 9), dtype=np.uint16)
    gray16[0, 0], gray16[0, 1] = 0, 65535
    out8 = read_image(_save(tmp_path / "a.png", gray8))
    out16 = read_image(_save(tmp_path / "b.png", gray16))
    assert out8.dtype == np.uint8 and np.array_equal(out8, gray8)
    assert out16.dtype == np.uint16 and np.array_equal(out16, gray16)
    assert read_record(tmp_path / "b.png").info["bits"] == 16


def test_16_bit_tiff_and_32_bit_integer_tiff(tmp_path):
    gray16 = RNG.integers(0, 65536, (6, 8), dtype=np.uint16)
    assert np.array_equal(read_image(_save(tmp_path / "a.tif", gray16)), gray16)
    Image.frombytes("I;16B", (8, 6), gray16.astype(">u2").tobytes()).save(tmp_path / "be.tif")
    big_endian = read_record(tmp_path / "be.tif")
    assert big_endian.info["mode"] == "I;16B" and big_endian.image.dtype == np.uint16
    assert np.array_equal(big_endian.image, gray16)
    fits = Image.fromarray(gray16.astype(np.int32))  # mode "I", values within uint16
    fits.save(tmp_path / "b.tiff")
    out = read_image(tmp_path / "b.tiff")
    assert out.dtype == np.uint16 and np.array_equal(out, gray16)
    Image.fromarray(np.array([[-5, 70000] * 2] * 4, np.int32)).save(tmp_path / "c.tif")
    assert _error(tmp_path / "c.tif") == (
        "integer pixel values in [-5, 70000] do not fit 16 bits "
        "(only 8- and 16-bit unsigned images are supported)"
    )


def test_rgb_rgba_and_la(tmp_path):
    rgb = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    assert np.array_equal(read_image(_save(tmp_path / "rgb.png", rgb)), rgb)
    alpha = np.full((5, 6, 1), 255, np.uint8)
    opaque = read_record(_save(tmp_path / "opaque.png", np.concatenate([rgb, alpha], -1)))
    assert np.array_equal(opaque.image, rgb) and opaque.info["alpha"] == "opaque"
    alpha[0, 0], alpha[0, 1] = 0, 128
    record = read_record(_save(tmp_path / "rgba.png", np.concatenate([rgb, alpha], -1)))
    assert record.image.shape == (5, 6, 3) and record.info["alpha"] == "composited over black"
    assert np.array_equal(record.image[0, 0], [0, 0, 0])  # transparent: black
    expected = np.round(rgb[0, 1].astype(float) * 128 / 255).astype(np.uint8)
    assert np.array_equal(record.image[0, 1], expected)
    assert np.array_equal(record.image[1:], rgb[1:])
    la = np.stack([rgb[..., 0], alpha[..., 0]], -1)
    gray = read_image(_save(tmp_path / "la.png", la))
    assert gray.shape == (5, 6) and gray[0, 0] == 0 and np.array_equal(gray[1:], rgb[1:, :, 0])


def test_palette_gif_bilevel_bmp_and_float_tiff(tmp_path):
    index = RNG.integers(0, 4, (6, 7), dtype=np.uint8)
    gray = Image.fromarray(index, "P")
    gray.putpalette([0, 0, 0, 90, 90, 90, 180, 180, 180, 255, 255, 255])
    gray.save(tmp_path / "gray.gif")
    out = read_image(tmp_path / "gray.gif")
    assert out.shape == (6, 7) and np.array_equal(out, np.array([0, 90, 180, 255])[index])
    colour = Image.fromarray(index, "P")
    colour.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
    colour.save(tmp_path / "colour.gif")
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]])
    assert np.array_equal(read_image(tmp_path / "colour.gif"), palette[index])
    bits = RNG.integers(0, 2, (8, 9)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "bits.bmp")
    out = read_image(tmp_path / "bits.bmp")
    assert out.dtype == np.uint8 and np.array_equal(out, bits * 255)
    floats = np.linspace(-3, 5, 20, dtype=np.float32).reshape(4, 5)
    Image.fromarray(floats, "F").save(tmp_path / "f.tif")
    out = read_image(tmp_path / "f.tif")
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    np.testing.assert_allclose(out, (floats + 3) / 8, atol=1e-6)


def test_jpeg_exif_orientation_is_applied_and_recorded(tmp_path):
    stored = _quadrants()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    _save(tmp_path / "scan.jpg", stored, exif=exif, quality=95)
    record = read_record(tmp_path / "scan.jpg")
    assert record.info["exif_orientation"] == 6 and record.info["exif_transposed"]
    shown = np.rot90(stored, -1)  # displayed = stored turned a quarter clockwise
    assert record.image.shape == shown.shape == (48, 32)
    assert np.abs(record.image.astype(int) - shown).mean() < 2
    assert np.abs(record.image.astype(int) - np.rot90(stored, 1)).mean() > 50
    _save(tmp_path / "plain.jpg", stored)
    assert read_record(tmp_path / "plain.jpg").info["exif_transposed"] is False


def _png_48_bit(path: Path, rgb16: np.ndarray) -> Path:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    h, w = rgb16.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)
    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


def test_16_bit_colour_png_is_read_at_8_bits_and_not_copied(tmp_path):
    rgb16 = RNG.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    record = read_record(_png_48_bit(tmp_path / "rgb48.png", rgb16))
    assert record.info["reduced_to_8_bit"] and record.image.dtype == np.uint8
    assert np.array_equal(record.image, rgb16 >> 8)  # Pillow keeps the high bytes
    with pytest.raises(ValueError, match="16-bit colour PNG at 8 bits per channel"):
        write_upright_copy(tmp_path / "rgb48.png", 1, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
    assert read_record(_save(tmp_path / "rgb8.png", rgb16.astype(np.uint8))).info[
        "reduced_to_8_bit"] is False


@pytest.mark.parametrize("suffix", [".tif", ".gif"])
def test_multi_frame_files_give_their_first_frame(tmp_path, suffix):
    frames = [Image.fromarray(np.full((6, 8), 60 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / f"m{suffix}", save_all=True, append_images=frames[1:])
    record = read_record(tmp_path / f"m{suffix}")
    assert record.info["frames"] == 3
    assert np.all(record.image == 0)


# -- reading: bad inputs --------------------------------------------------------------


def test_truncated_png_and_text_file_named_png_are_reported(tmp_path):
    full = _save(tmp_path / "full.png", RNG.integers(0, 256, (64, 64), dtype=np.uint8))
    data = full.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert _error(tmp_path / "cut.png").startswith("corrupt or truncated PNG file (")
    (tmp_path / "notes.png").write_text("not an image\n")
    assert _error(tmp_path / "notes.png") == "not a PNG file (cannot identify image)"
    with pytest.raises(ImageReadError) as caught:
        read_image(tmp_path / "cut.png")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'cut.png'}: corrupt or truncated")
    assert "\n" not in message


def test_images_smaller_than_4x4_are_errors(tmp_path):
    assert _error(_save(tmp_path / "dot.png", np.zeros((1, 1), np.uint8))) == (
        "image is 1x1 pixels; at least 4x4 is needed"
    )
    assert _error(_save(tmp_path / "thin.png", np.zeros((9, 3), np.uint8))).startswith(
        "image is 3x9 pixels"
    )
    assert read_record(_save(tmp_path / "ok.png", np.zeros((4, 4), np.uint8))).ok


def test_unreadable_files_are_yielded_not_skipped(tmp_path):
    _save(tmp_path / "a.png", np.zeros((5, 5), np.uint8))
    (tmp_path / "b.png").write_text("oops")
    _save(tmp_path / "c.bmp", np.zeros((5, 5, 3), np.uint8))
    records = load_images(tmp_path)
    assert [(r.path.name, r.ok) for r in records] == [
        ("a.png", True), ("b.png", False), ("c.bmp", True)
    ]
    assert isinstance(records[1], ImageRecord) and records[1].error.startswith("not a PNG")


def test_iter_images_is_lazy(tmp_path, monkeypatch):
    for name in "abc":
        _save(tmp_path / f"{name}.png", np.zeros((5, 5), np.uint8))
    opened = []

    def counting(path):
        opened.append(Path(path).name)
        return ImageRecord(Path(path), np.zeros((5, 5), np.uint8))

    monkeypatch.setattr(rio, "read_record", counting)
    records = iter_images(tmp_path)
    assert inspect.isgenerator(records) and opened == []
    assert next(records).path.name == "a.png" and opened == ["a.png"]
    assert next(records).path.name == "b.png" and opened == ["a.png", "b.png"]
    with pytest.raises(FileNotFoundError):  # checked at call time, before any iteration
        iter_images(tmp_path / "missing")


# -- finding files --------------------------------------------------------------------


def test_find_image_files_order_suffixes_hidden_and_dicom_marker(tmp_path):
    for name in ["b.PNG", "a.jpeg", "C.Tif", "notes.txt", ".hidden.png", "._a.png"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "IM0001").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 8)
    (tmp_path / "1.2.840.113619.7").write_bytes(b"\0" * 128 + b"DICM")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.dcm").write_bytes(b"x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "e.png").write_bytes(b"x")
    names = [p.name for p in find_image_files(tmp_path)]
    assert names == ["1.2.840.113619.7", "C.Tif", "IM0001", "a.jpeg", "b.PNG"]
    deep = find_image_files(str(tmp_path), recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in deep][-1] == "sub/d.dcm" and len(deep) == 6
    both = find_image_files([tmp_path / "notes.txt", tmp_path, tmp_path / "a.jpeg"])
    assert both[0].name == "notes.txt" and len(both) == 6  # explicit file kept, no duplicate


def test_find_image_files_errors_name_the_path(tmp_path):
    _save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(FileNotFoundError, match="no such file or folder: .*missing"):
        find_image_files([tmp_path, tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"folder .*empty is empty"):
        find_image_files(tmp_path / "empty")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    (folder / "b.csv").write_text("x")
    with pytest.raises(ValueError) as caught:
        find_image_files(folder)
    message = str(caught.value)
    assert "holds 2 file(s) with suffixes .csv, .txt" in message and ".png" in message
    assert "recursive=True" not in message
    (folder / "2024").mkdir()
    _save(folder / "2024" / "x.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="subfolders hold image files: pass recursive=True"):
        find_image_files(folder)
    assert find_image_files(folder, recursive=True) == [folder / "2024" / "x.png"]
    for bad in ([], 3, [tmp_path, 3]):
        with pytest.raises(ValueError, match="inputs"):
            find_image_files(bad)


# -- DICOM ----------------------------------------------------------------------------


def _dicom(path: Path, pixels: np.ndarray, interpretation: str = "MONOCHROME2", **elements):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.Modality = "DX"
    ds.set_pixel_data(pixels, interpretation, 8 * pixels.dtype.itemsize)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


STORED = (np.arange(6 * 8, dtype=np.uint16).reshape(6, 8) * 41) + 100


@needs_pydicom
def test_dicom_rescale_and_window_as_the_standard_and_pydicom(tmp_path):
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = _dicom(tmp_path / "a.dcm", STORED, RescaleSlope=2, RescaleIntercept=-1000,
                WindowCenter=1000, WindowWidth=2001)
    record = read_record(tmp_path / "a.dcm")
    assert record.image.dtype == np.float32 and record.image.shape == (6, 8)
    assert record.info["voi"] == "window center 1000 width 2001"
    assert record.info["rescale"] == (2, -1000)
    x = STORED * 2.0 - 1000  # PS3.3 C.11.2.1.2.1, linear window
    standard = np.clip((x - 999.5) / 2000 + 0.5, 0, 1)
    np.testing.assert_allclose(record.image, standard, atol=1e-6)
    assert record.image.min() == 0 and record.image.max() == 1 and 0 < record.image[3, 4] < 1
    y_min, y_max = -1000, 65535 * 2 - 1000  # pydicom's output range for this dataset
    by_pydicom = (apply_voi_lut(apply_modality_lut(STORED, ds), ds) - y_min) / (y_max - y_min)
    np.testing.assert_allclose(record.image, by_pydicom, atol=1e-6)


@needs_pydicom
def test_dicom_min_max_without_window_and_monochrome1_inverted(tmp_path):
    _dicom(tmp_path / "m2.dcm", STORED)
    _dicom(tmp_path / "m1.dcm", STORED, "MONOCHROME1")
    m2, m1 = read_record(tmp_path / "m2.dcm"), read_record(tmp_path / "m1.dcm")
    np.testing.assert_allclose(m2.image, (STORED - 100.0) / (STORED.max() - 100.0), atol=1e-6)
    assert m2.info["voi"] == "min-max" and not m2.info["inverted"]
    assert m1.info["inverted"] and m1.image[0, 0] == 1 and m1.image[-1, -1] == 0
    np.testing.assert_allclose(m1.image, 1 - m2.image, atol=1e-6)


@needs_pydicom
def test_dicom_voi_lut_sequence(tmp_path):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.LUTDescriptor = [2048, 100, 8]  # 2048 entries for inputs 100..2147, 8 bits each
    item.LUTData = [min(255, i // 4) for i in range(2048)]
    item["LUTData"].VR = "US"
    _dicom(tmp_path / "lut.dcm", STORED, VOILUTSequence=[item], WindowCenter=5, WindowWidth=3)
    record = read_record(tmp_path / "lut.dcm")
    assert record.info["voi"] == "VOI LUT"  # preferred over the window, as apply_voi_lut
    expected = np.minimum(255, (np.clip(STORED, 100, 2147) - 100) // 4) / 255
    np.testing.assert_allclose(record.image, expected, atol=1e-6)
    # OW bytes; declared 16 bits but 12-bit entries: scaled by the entries' own range.
    words = Dataset()
    words.LUTDescriptor = [4096, 0, 16]
    words.add_new("LUTData", "OW", np.arange(4096, dtype="<u2").tobytes())
    _dicom(tmp_path / "ow.dcm", STORED, VOILUTSequence=[words])
    np.testing.assert_allclose(read_image(tmp_path / "ow.dcm"), STORED / 4095, atol=1e-6)


@needs_pydicom
def test_rgb_dicom(tmp_path):
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    _dicom(tmp_path / "c.dcm", rgb, "RGB")
    out = read_image(tmp_path / "c.dcm")
    assert out.shape == (5, 7, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, rgb / 255, atol=1e-6)


@needs_pydicom
def test_bad_dicom_files_are_reported(tmp_path):
    _dicom(tmp_path / "frames.dcm", np.zeros((12, 5, 6), np.uint16))
    assert _error(tmp_path / "frames.dcm") == "multi-frame DICOM (12 frames) is not supported"
    ds = _dicom(tmp_path / "full.dcm", STORED)
    del ds.PixelData
    ds.save_as(tmp_path / "nopixels.dcm")
    assert _error(tmp_path / "nopixels.dcm") == (
        "DICOM file has no pixel data (a Secondary Capture Image Storage object)"
    )
    (tmp_path / "text.dcm").write_text("hello\n" * 40)
    assert _error(tmp_path / "text.dcm") == "not a DICOM file (no 'DICM' marker at byte 128)"
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    ds.file_meta.TransferSyntaxUID = JPEGLSLossless
    ds.PixelData = encapsulate([b"\xff\xd8 not really JPEG-LS \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.save_as(tmp_path / "jpegls.dcm")
    error = _error(tmp_path / "jpegls.dcm")
    assert error.startswith("cannot decode the compressed pixel data (JPEG-LS Lossless")


@needs_pydicom
def test_dicom_without_pydicom_says_how_to_install(tmp_path, monkeypatch):
    _dicom(tmp_path / "a.dcm", STORED)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom -> ImportError
    assert _error(tmp_path / "a.dcm") == (
        'reading DICOM files needs pydicom: pip install "risc_tf[dicom]"'
    )
    assert read_record(_save(tmp_path / "b.png", STORED)).ok  # other formats unaffected


@needs_pydicom
def test_acr_nema_dicom_without_preamble_or_file_meta_is_read_and_copied(tmp_path):
    import pydicom

    for name in ("old.dcm", "IM0001"):  # a DICOM suffix, or none (named explicitly)
        path = write_acr_nema(tmp_path / name, STORED)
        record = read_record(path)
        assert record.ok, record.error
        assert record.info["transfer_syntax"] == "Implicit VR Little Endian"
        np.testing.assert_allclose(record.image, (STORED - 100.0) / (STORED.max() - 100.0),
                                   atol=1e-6)
        copy = pydicom.dcmread(write_upright_copy(path, 1, tmp_path / f"up_{name}"))
        assert np.array_equal(copy.pixel_array, np.rot90(STORED, 1))
        assert copy.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
        assert list(copy.ImageType) == ["DERIVED", "SECONDARY"]  # no ImageType before
        assert "no SOP Class (ACR-NEMA)" in copy.DerivationDescription
    (tmp_path / "notes").write_text("no image, no DICOM")  # no suffix, not DICOM either
    assert _error(tmp_path / "notes") == "not an image file (cannot identify image)"


@needs_pydicom
def test_dicom_copy_is_derived_even_without_image_type(tmp_path):
    import pydicom

    _dicom(tmp_path / "a.dcm", STORED)  # no ImageType
    copy = pydicom.dcmread(write_upright_copy(tmp_path / "a.dcm", 2, tmp_path / "out"))
    assert list(copy.ImageType) == ["DERIVED", "SECONDARY"]


def test_names_that_are_not_utf8_have_one_escaped_form():
    from risc_tf.imagefiles import display_path, escape_text

    name = os.fsdecode(b"ward\xff/scan\xe9.png")
    assert escape_text(name) == "ward\\xff/scan\\xe9.png"
    assert escape_text(name) == os.fsencode(name).decode("utf-8", "backslashreplace")
    assert display_path(Path("caf\u00e9.png")) == "caf\u00e9.png"  # valid UTF-8: unchanged
    assert escape_text("\ud800") == "\\ud800"  # any other lone surrogate


def test_options_are_keyword_only(tmp_path):
    _save(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    for call in (lambda: find_image_files(tmp_path, True), lambda: iter_images(tmp_path, True),
                 lambda: load_images(tmp_path, True),
                 lambda: write_upright_copy(tmp_path / "a.png", 1, tmp_path / "o", tmp_path)):
        with pytest.raises(TypeError, match="positional argument"):
            call()


# -- writing upright copies -----------------------------------------------------------


def test_turning_back_a_png_stored_90_degrees_ccw_gives_the_upright_image(tmp_path):
    upright = RNG.integers(0, 256, (5, 9), dtype=np.uint8)
    _save(tmp_path / "scan.png", np.rot90(upright, 1))  # predicted rotation: 90 degrees
    for turns in (-1, 3):
        out = write_upright_copy(tmp_path / "scan.png", turns, tmp_path / f"out{turns}")
        assert np.array_equal(np.asarray(Image.open(out)), upright)
    out = write_upright_copy(tmp_path / "scan.png", 1, tmp_path / "wrong_way")
    assert np.array_equal(np.asarray(Image.open(out)), np.rot90(upright, 2))


def _formats(tmp_path: Path) -> list[Path]:
    rgba = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    gif = Image.fromarray(RNG.integers(0, 5, (5, 7), dtype=np.uint8), "P")
    gif.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 200, 200])
    gif.save(tmp_path / "p.gif")
    frames = [Image.fromarray(RNG.integers(0, 65536, (5, 7), dtype=np.uint16)) for _ in range(3)]
    frames[0].save(tmp_path / "stack.tif", save_all=True, append_images=frames[1:],
                   compression="tiff_lzw")
    big_endian = RNG.integers(0, 65536, (5, 7), dtype=np.uint16).astype(">u2")
    Image.frombytes("I;16B", (7, 5), big_endian.tobytes()).save(tmp_path / "be.tif")
    return [
        tmp_path / "be.tif",
        _save(tmp_path / "g8.png", RNG.integers(0, 256, (5, 7), dtype=np.uint8)),
        _save(tmp_path / "g16.png", RNG.integers(0, 65536, (5, 7), dtype=np.uint16)),
        _save(tmp_path / "rgba.png", rgba),
        _save(tmp_path / "rgb.bmp", rgba[..., :3].copy()),
        _save(tmp_path / "g16.tif", RNG.integers(0, 65536, (5, 7), dtype=np.uint16)),
        tmp_path / "p.gif",
        tmp_path / "stack.tif",
    ]


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_copies_are_lossless_same_format_and_mode(tmp_path, turns):
    for src in _formats(tmp_path):
        out = write_upright_copy(src, turns, tmp_path / "out")
        with Image.open(src) as before, Image.open(out) as after:
            assert (after.format, after.mode) == (before.format, before.mode), src.name
            assert getattr(after, "n_frames", 1) == getattr(before, "n_frames", 1)
            for index in range(getattr(before, "n_frames", 1)):
                before.seek(index)
                after.seek(index)
                rotated = np.rot90(np.asarray(before.convert("RGBA")), turns)
                assert np.array_equal(np.asarray(after.convert("RGBA")), rotated), src.name
        assert np.array_equal(read_image(out), np.rot90(read_image(src), turns))


def test_jpeg_copy_is_the_one_lossy_case_and_bakes_in_exif(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    src = _save(tmp_path / "scan.jpg", _quadrants(), exif=exif, quality=90)
    out = write_upright_copy(src, 1, tmp_path / "out")
    with Image.open(src) as before, Image.open(out) as after:
        assert after.format == "JPEG" and after.quantization == before.quantization
        assert after.getexif().get(0x0112) in (None, 1)
    shown = read_image(src)
    copy = read_image(out)
    assert copy.shape == np.rot90(shown, 1).shape
    assert np.abs(copy.astype(int) - np.rot90(shown, 1)).mean() < 1.5


def test_copy_never_touches_the_input_and_is_atomic(tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    src = _save(tmp_path / "in" / "scan.png", RNG.integers(0, 256, (6, 6), dtype=np.uint8))
    before = (src.read_bytes(), os.stat(src).st_mtime_ns)
    with pytest.raises(ValueError, match="over the file itself"):
        write_upright_copy(src, 1, src.parent, overwrite=True)
    out = write_upright_copy(src, 1, tmp_path / "out")
    assert (src.read_bytes(), os.stat(src).st_mtime_ns) == before
    assert os.listdir(tmp_path / "out") == ["scan.png"]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_upright_copy(src, 2, tmp_path / "out")
    assert write_upright_copy(src, 2, tmp_path / "out", overwrite=True) == out
    assert np.array_equal(read_image(out), np.rot90(read_image(src), 2))

    def half_written(source, turns, destination):
        destination.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(rio, "write_rotated_pil", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_upright_copy(src, 1, tmp_path / "out", overwrite=True)
    assert os.listdir(tmp_path / "out") == ["scan.png"]  # no temporary file left
    assert np.array_equal(read_image(out), np.rot90(read_image(src), 2))  # old copy intact
    same = write_upright_copy(src, 4, tmp_path / "zero")
    assert same.read_bytes() == src.read_bytes()  # a whole turn: byte-for-byte copy


def test_relative_to_keeps_subfolders(tmp_path):
    (tmp_path / "scans" / "ward_a").mkdir(parents=True)
    src = _save(tmp_path / "scans" / "ward_a" / "x.png", np.zeros((4, 4), np.uint8))
    out = write_upright_copy(src, 1, tmp_path / "fixed", relative_to=tmp_path / "scans")
    assert out == tmp_path / "fixed" / "ward_a" / "x.png" and out.is_file()
    with pytest.raises(ValueError, match="is not inside relative_to"):
        write_upright_copy(src, 1, tmp_path / "fixed", relative_to=tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="quarter_turns_ccw"):
        write_upright_copy(src, 1.5, tmp_path / "fixed")
    with pytest.raises(FileNotFoundError):
        write_upright_copy(tmp_path / "nope.png", 1, tmp_path / "fixed")


def _patient_xyz(ds) -> np.ndarray:
    """Patient coordinates of every pixel centre, (rows, cols, 3), from IPP/IOP/PixelSpacing."""
    orientation = np.array(ds.ImageOrientationPatient, float)
    row, col = orientation[:3], orientation[3:]
    dr, dc = (float(v) for v in ds.PixelSpacing)
    i, j = np.mgrid[: ds.Rows, : ds.Columns]
    origin = np.array(ds.ImagePositionPatient, float)
    return origin + j[..., None] * dc * row + i[..., None] * dr * col


@needs_pydicom
@pytest.mark.parametrize("turns", [1, 2, 3])
def test_dicom_copy_is_a_derived_instance_with_rotated_stored_pixels(tmp_path, turns):
    import pydicom

    ds = _dicom(tmp_path / "a.dcm", STORED, RescaleSlope=2, RescaleIntercept=-1000,
                PixelSpacing=[0.5, 0.8], ImageType=["ORIGINAL", "PRIMARY"],
                ImageOrientationPatient=[1, 0, 0, 0, 1, 0], ImagePositionPatient=[10, 20, 30],
                PatientOrientation=["L", "F"])
    out = write_upright_copy(tmp_path / "a.dcm", turns, tmp_path / "out")
    copy = pydicom.dcmread(out)
    assert np.array_equal(copy.pixel_array, np.rot90(STORED, turns))
    assert (copy.Rows, copy.Columns) == ((8, 6) if turns % 2 else (6, 8))
    assert list(copy.PixelSpacing) == ([0.8, 0.5] if turns % 2 else [0.5, 0.8])
    assert copy.SOPInstanceUID != ds.SOPInstanceUID
    assert copy.file_meta.MediaStorageSOPInstanceUID == copy.SOPInstanceUID
    assert copy.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert list(copy.ImageType) == ["DERIVED", "PRIMARY"]
    assert f"Rotated {90 * turns} degrees counter-clockwise" in copy.DerivationDescription
    assert copy.SourceImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert (copy.RescaleSlope, copy.RescaleIntercept) == (2, -1000)
    # Every pixel keeps its place in the patient: same value, same coordinates.
    np.testing.assert_allclose(_patient_xyz(copy), np.rot90(_patient_xyz(ds), turns), atol=1e-4)
    expected = {1: ["F", "R"], 2: ["R", "H"], 3: ["H", "L"]}[turns]
    assert list(copy.PatientOrientation) == expected
    assert np.array_equal(read_image(out), np.rot90(read_image(tmp_path / "a.dcm"), turns))


@needs_pydicom
def test_compressed_dicom_copy_is_written_uncompressed(tmp_path):
    import pydicom
    from pydicom.uid import RLELossless

    ds = _dicom(tmp_path / "a.dcm", STORED)
    ds.compress(RLELossless)
    ds.save_as(tmp_path / "rle.dcm")
    out = write_upright_copy(tmp_path / "rle.dcm", -1, tmp_path / "out")
    copy = pydicom.dcmread(out)
    assert copy.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert np.array_equal(copy.pixel_array, np.rot90(STORED, -1))


# -- module hygiene -------------------------------------------------------------------


def test_docstring_examples_hold():
    result = doctest.testmod(rio, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_reading_modules_import_neither_tensorflow_nor_pydicom():
    code = (
        "import sys, types; pkg = types.ModuleType('risc_tf'); pkg.__path__ = ['risc_tf'];"
        "sys.modules['risc_tf'] = pkg; import risc_tf.io, risc_tf.review, risc_tf.decisions,"
        "risc_tf.scans, risc_tf.straighten, risc_tf.shards, risc_tf.prediction_run,"
        "risc_tf.staging, risc_tf.commands.predict, risc_tf.commands.merge;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'tensorflow', 'keras', 'matplotlib', 'pydicom'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
