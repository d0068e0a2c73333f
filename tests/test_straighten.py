"""risc_tf.straighten: resampled copies for angles no quarter turn undoes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from risc_tf.io import read_image
from risc_tf.straighten import straighten_image, write_straightened_copy

needs_pydicom = pytest.mark.skipif(importlib.util.find_spec("pydicom") is None,
                                   reason='pydicom is not installed (pip install "risc_tf[dicom]")')


def _marker(shape=(40, 60), dtype=np.uint8, value=200) -> np.ndarray:
    """A dark image with one bright square right of centre: easy to follow through a turn."""
    image = np.full(shape, 20, dtype)
    h, w = shape
    image[h // 2 - 3:h // 2 + 3, w // 2 + 12:w // 2 + 18] = value
    return image


def _centroid(image) -> np.ndarray:
    bright = np.argwhere(image > image.max() * 0.6)
    return bright.mean(axis=0) - (np.array(image.shape[:2]) - 1) / 2  # (row, col) from centre


def test_straighten_image_turns_counter_clockwise_on_an_expanded_canvas():
    image = _marker()
    turned = straighten_image(image, 30)
    assert turned.dtype == np.uint8 and turned.shape[0] > 40 and turned.shape[1] > 60
    row, col = _centroid(turned)
    # the square 15 px right of centre moves up and to the left by 30 degrees ccw
    assert col == pytest.approx(15 * np.cos(np.radians(30)), abs=1.0)
    assert row == pytest.approx(-15 * np.sin(np.radians(30)), abs=1.0)
    assert turned[0, 0] == 0  # the added corners are black
    back = straighten_image(turned, -30)
    h0, w0 = (np.array(back.shape) - image.shape) // 2
    inner = back[h0 + 8:h0 + 32, w0 + 8:w0 + 52]
    assert np.abs(inner.astype(int) - image[8:32, 8:52]).mean() < 6  # resampled, not exact
    # exact quarter turns are not interpolated; Pillow agrees on the rest within rounding
    assert np.array_equal(straighten_image(image, 90), np.rot90(image))
    pillow = np.asarray(Image.fromarray(image).rotate(30, Image.Resampling.BILINEAR,
                                                      expand=True))
    assert pillow.shape == turned.shape and np.abs(pillow.astype(int) - turned).max() <= 1
    sixteen = straighten_image(_marker(dtype=np.uint16, value=60000), -45)
    assert sixteen.dtype == np.uint16 and sixteen.max() > 50000
    assert straighten_image(np.stack([image] * 3, -1), 10).shape[-1] == 3
    for bad in (np.zeros((0, 4)), np.zeros((2, 3, 4, 5))):
        with pytest.raises(ValueError, match="image must have shape"):
            straighten_image(bad, 10)
    with pytest.raises(ValueError, match="finite"):
        straighten_image(image, float("nan"))


@pytest.mark.parametrize("suffix, dtype", [(".png", np.uint8), (".png", np.uint16),
                                           (".tif", np.uint16), (".jpg", np.uint8),
                                           (".bmp", np.uint8)])
def test_straightened_copies_keep_format_and_depth(tmp_path, suffix, dtype):
    image = _marker(dtype=dtype, value=200 if dtype == np.uint8 else 50000)
    src = tmp_path / f"scan{suffix}"
    Image.fromarray(straighten_image(image, 30)).save(src)  # stored turned by 30 degrees
    out = write_straightened_copy(src, -30, tmp_path / "up")
    assert out == tmp_path / "up" / src.name
    with Image.open(out) as copy:
        assert copy.format == Image.open(src).format
    copy = read_image(out)
    assert copy.dtype == dtype
    row, col = _centroid(copy)
    assert abs(row) < 1.5 and col == pytest.approx(15, abs=1.5)  # upright again
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_straightened_copy(src, -30, tmp_path / "up")
    assert write_straightened_copy(src, -30, tmp_path / "up", overwrite=True) == out


def test_what_is_not_straightened_says_why(tmp_path):
    gif = tmp_path / "a.gif"
    Image.fromarray(_marker()).convert("P").save(gif)
    with pytest.raises(ValueError, match="straightened copies of GIF files are not written"):
        write_straightened_copy(gif, 20, tmp_path / "up")
    floats = tmp_path / "f.tif"
    Image.fromarray(_marker().astype(np.float32)).save(floats)
    with pytest.raises(ValueError, match="not read at its own depth"):
        write_straightened_copy(floats, 20, tmp_path / "up")
    with pytest.raises(FileNotFoundError):
        write_straightened_copy(tmp_path / "missing.png", 20, tmp_path / "up")
    assert not (tmp_path / "up").exists() or list((tmp_path / "up").iterdir()) == []


def _dicom(path: Path, pixels, **elements):
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.Modality = "DX"
    ds.set_pixel_data(pixels, "MONOCHROME2", 16)
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return pydicom.dcmread(path)


def _xyz(ds, row: float, col: float) -> np.ndarray:
    """Patient coordinates of a (row, col) pixel position."""
    orientation = np.array(ds.ImageOrientationPatient, float)
    spacing = [float(v) for v in ds.PixelSpacing]
    return (np.array(ds.ImagePositionPatient, float) + col * spacing[1] * orientation[:3]
            + row * spacing[0] * orientation[3:])


@needs_pydicom
def test_straightened_dicom_is_resampled_derived_and_keeps_the_patient_geometry(tmp_path):
    import pydicom

    stored = _marker(dtype=np.uint16, value=3000)
    ds = _dicom(tmp_path / "a.dcm", stored, PixelSpacing=[0.5, 0.5],
                ImageOrientationPatient=[1, 0, 0, 0, 1, 0], ImagePositionPatient=[10, 20, 30],
                ImageType=["ORIGINAL", "PRIMARY"], PatientOrientation=["L", "F"])
    out = write_straightened_copy(tmp_path / "a.dcm", -35, tmp_path / "up")
    copy = pydicom.dcmread(out)
    assert list(copy.ImageType) == ["DERIVED", "PRIMARY", "RESAMPLED"]
    assert "RESAMPLED, interpolated from the original values" in copy.DerivationDescription
    assert "bilinear interpolation on an expanded canvas" in copy.DerivationDescription
    assert copy.SOPInstanceUID != ds.SOPInstanceUID
    assert copy.SourceImageSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert "PatientOrientation" not in copy  # letters cannot name an oblique direction
    pixels = copy.pixel_array
    assert pixels.dtype == np.uint16 and pixels.shape[0] > 40 and pixels.min() == 20
    # the marker is at the same place in the patient before and after
    before = np.argwhere(stored > 2000).mean(axis=0)
    after = np.argwhere(pixels > 2000).mean(axis=0)
    np.testing.assert_allclose(_xyz(copy, *after), _xyz(ds, *before), atol=0.5)  # mm
    _dicom(tmp_path / "thin.dcm", stored, PixelSpacing=[0.5, 0.8])
    with pytest.raises(ValueError, match="pixels are not square"):
        write_straightened_copy(tmp_path / "thin.dcm", 20, tmp_path / "up")
