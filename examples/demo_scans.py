"""Write the demo folder of docs/deploy.md: a user's scans, turned, tilted and broken.

    python examples/demo_scans.py --data-root ../shared/data/medmnist --output scans/

From the PneumoniaMNIST test split (images 0-10):

* ``patient01``-``06.png``: 28x28 8-bit PNG; 02, 03, 04 and 06 turned with
  ``np.rot90`` by 90, 180, 270 and 90 degrees;
* ``patient07_16bit.png``: 56x56 16-bit PNG (12-bit values), turned by 180;
* ``patient08.jpg``: a JPEG turned by 90;
* ``patient09.dcm``: 64x64 12-bit DICOM with a window, turned by 270
  (needs pydicom: ``pip install "risc_tf[dicom]"``; skipped without it);
* ``patient10_tilted.png``: turned by 45 degrees (bilinear, expanded canvas),
  an angle a quarter-turn pipeline cannot undo;
* ``broken.png``: a truncated PNG.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from risc_tf import load_medmnist
from risc_tf.straighten import straighten_image


def _dicom(path: Path, pixels: np.ndarray) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Modality, ds.PatientOrientation = "DX", ["L", "F"]
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PixelSpacing = [0.5, 0.4]
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ds.set_pixel_data(pixels, "MONOCHROME2", 12)
    ds.save_as(path, enforce_file_format=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None,
                        help="folder holding pneumoniamnist.npz (default: $RISC_TF_DATA)")
    parser.add_argument("--output", default="scans", help="the folder to write (new)")
    args = parser.parse_args()
    images, _ = load_medmnist("pneumoniamnist", "test", root=args.data_root)
    out = Path(args.output)
    out.mkdir(parents=True)
    turns = {2: 1, 3: 2, 4: 3, 6: 1}
    for i in range(1, 7):
        Image.fromarray(np.rot90(images[i - 1], turns.get(i, 0)).copy()).save(
            out / f"patient{i:02d}.png")
    big = np.asarray(Image.fromarray(images[6]).resize((56, 56), Image.Resampling.BICUBIC))
    Image.fromarray(np.rot90(big.astype(np.uint16) * 16, 2).copy()).save(
        out / "patient07_16bit.png")
    Image.fromarray(np.rot90(images[7], 1).copy()).save(out / "patient08.jpg", quality=95)
    if importlib.util.find_spec("pydicom") is not None:
        dicom = np.asarray(Image.fromarray(images[8]).resize((64, 64), Image.Resampling.BICUBIC))
        _dicom(out / "patient09.dcm", np.rot90(dicom.astype(np.uint16) * 16, 3).copy())
    Image.fromarray(straighten_image(images[9], 45)).save(out / "patient10_tilted.png")
    Image.fromarray(images[10]).save(out / "broken.png")
    data = (out / "broken.png").read_bytes()
    (out / "broken.png").write_bytes(data[: len(data) // 2])
    print(f"wrote {len(list(out.iterdir()))} files to {out}")


if __name__ == "__main__":
    main()
