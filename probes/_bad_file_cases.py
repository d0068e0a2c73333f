"""Issue 22's probe, the input cases: file names with the byte 0xff (items 5, 9), ACR-NEMA
DICOM (item 6), ``save`` below a file (item 7), a missing output folder (item 8) and
the API inputs of the round before.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from devdata import write_acr_nema
from probes._bad_harness import Probe, changes, classify, csv_rows, left, snapshot


# -- items 5, 9: a file name with the byte 0xff; every message under strict UTF-8 ---------
def png_bytes(image: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def escaped(path: bytes) -> str:
    """The documented form of a file name in every output (docs/deploy.md)."""
    return path.decode("utf-8", "backslashreplace")


def name_cases(probe: Probe, pipeline: Path, images: np.ndarray) -> None:
    base = probe.tmp / "names"
    scans = base / "scans"
    scans.mkdir(parents=True)
    odd, cut = os.fsencode(scans) + b"/scan\xff.png", os.fsencode(scans) + b"/cut\xff.png"
    files = {os.fsencode(scans) + b"/a.png": png_bytes(images[0]),
             odd: png_bytes(np.rot90(images[1])),
             os.fsencode(scans) + b"/c.png": png_bytes(np.rot90(images[2], 2)),
             cut: png_bytes(images[3])[:60]}  # truncated: the summary prints its name
    for path, data in files.items():
        with open(path, "wb") as fh:
            fh.write(data)
    strict = {"PYTHONIOENCODING": "utf-8:strict"}
    for name, suffix, env in (("predict: a file name with byte 0xff", "csv", None),
                              ("predict: byte 0xff, strict UTF-8 stdout, JSON output",
                               "json", strict)):
        out, up = base / f"out-{suffix}", base / f"up-{suffix}"
        out.mkdir()
        argv = ["predict", "--pipeline", pipeline, scans, "--output", out / f"pred.{suffix}",
                "--fix-orientation", up, "--quiet"]
        done = probe.cli(*argv, env=env)
        wrong, copies = [], []
        if done.code == 0:
            target = out / f"pred.{suffix}"
            if suffix == "csv":
                rows = csv_rows(target)
            else:
                text = target.read_text(encoding="utf-8")
                rows = json.loads(text) if text.lstrip().startswith("[") else \
                    [json.loads(ln) for ln in text.splitlines() if ln.strip()]
            paths = [r["path"] for r in rows]
            if escaped(odd) not in paths:
                wrong.append(f"no row with the escaped name {escaped(odd)!r} (rows: {paths})")
            if len(rows) != len(files):
                wrong.append(f"{len(rows)} rows for {len(files)} files")
            for row in rows:
                copy = row.get("upright_copy")
                if copy and not os.path.exists(os.fsencode(copy.replace("\\xff", "\udcff"))):
                    wrong.append(f"listed copy {copy!r} not on disk (name bytes restored)")
            copies = os.listdir(os.fsencode(up)) if up.is_dir() else []
            if any(r["path"] == escaped(odd) and r.get("upright_copy") for r in rows) and \
                    b"scan\xff.png" not in copies:
                wrong.append("the copy does not keep the original bytes of the name")
            if f"unreadable: {escaped(cut)}" not in done.stdout:
                wrong.append(f"the summary does not print {escaped(cut)!r} as unreadable")
            if not done.utf8:
                wrong.append("printed bytes that are not UTF-8")
        note = ""
        if done.code == 0 and not wrong:
            note = (f"rows and summary hold {escaped(odd).rsplit('/', 1)[1]} and "
                    f"{escaped(cut).rsplit('/', 1)[1]}" + ("; its copy's name keeps the byte 0xff"
                                                           if b"scan\xff.png" in copies else ""))
        verdict = classify(True, done.code, done.stderr, wrong=wrong, note=note)
        probe.add("5", name, probe.show(["risc-tf", *argv]) + (
            "  (PYTHONIOENCODING=utf-8:strict)" if env else ""), done.code, verdict,
            done.seconds)

    # item 9: refusals that print a 0xff name, under a strict UTF-8 stdout and stderr
    broken = base / "broken"
    broken.mkdir()
    with open(os.fsencode(broken) + b"/bad\xff.png", "wb") as fh:
        fh.write(png_bytes(images[0])[:40])
    gone = os.fsencode(base) + b"/gone\xff.png"
    for name, inputs, names in (
            ("predict MISSING-0xff-NAME (strict UTF-8)", [gone], ("gone\\xff.png",)),
            ("predict: only file truncated, 0xff name (strict UTF-8)", [broken],
             ("bad\\xff.png",))):
        out = base / f"out-{len(probe.cases)}"
        out.mkdir()
        argv = ["predict", "--pipeline", pipeline, *inputs, "--output", out / "pred.csv",
                "--quiet"]
        done = probe.cli(*argv, env=strict)
        verdict = classify(False, done.code, done.stderr, names=names,
                           written=left(out, probe.tmp)[1:],
                           wrong=[] if done.utf8 else ["printed bytes that are not UTF-8"])
        probe.add("9", name, probe.show(["risc-tf", *argv]), done.code, verdict,
                  done.seconds)


# -- item 6: an ACR-NEMA DICOM file ---------------------------------------------------------
def dicom_case(probe: Probe, pipeline: Path, images: np.ndarray) -> None:
    base = probe.tmp / "dicom"
    (base / "scans").mkdir(parents=True)
    try:
        import pydicom  # noqa: F401
    except ImportError:
        probe.add("6", "predict: ACR-NEMA DICOM", "-", None,
                  ("skipped", "pydicom is not installed"), 0.0)
        return
    pixels = np.kron(images[3].astype(np.uint16), np.ones((2, 2), np.uint16)) * 16
    files = [write_acr_nema(base / "scans" / "old.dcm", pixels),
             write_acr_nema(base / "scans" / "IM0001", np.rot90(pixels))]
    argv = ["predict", "--pipeline", pipeline, *files, "--output", base / "pred.csv",
            "--fix-orientation", base / "upright", "--quiet"]
    done = probe.cli(*argv)
    wrong = []
    if done.code == 0:
        rows = csv_rows(base / "pred.csv")
        wrong = [f"{Path(r['path']).name}: {r['status']} ({r['reason']})" for r in rows
                 if r["status"] == "unreadable"]
        if len(rows) != 2:
            wrong.append(f"{len(rows)} rows for 2 files")
    verdict = classify(True, done.code, done.stderr, wrong=wrong,
                       note="both read (old.dcm, suffix-less IM0001)" if done.code == 0
                       and not wrong else "")
    probe.add("6", "predict: ACR-NEMA DICOM (implicit VR LE, no preamble/meta)",
              probe.show(["risc-tf", *argv]), done.code, verdict, done.seconds)


# -- items 7, 8 ---------------------------------------------------------------------------
def api_call(fn) -> tuple[int, str, object]:
    """``(code, text, value)`` of a library call, as the CLI would count it: 0, 2 for a
    ValueError or OSError (``Type: message``), 1 with the traceback for anything else."""
    import traceback

    try:
        return 0, "", fn()
    except (ValueError, OSError) as err:
        return 2, f"{type(err).__name__}: {err}", None
    except Exception:  # noqa: BLE001 - any other exception is what the probe looks for
        return 1, traceback.format_exc(), None


def save_case(probe: Probe, pipe) -> None:
    base = probe.tmp / "save"
    base.mkdir()
    blocker = base / "models"
    blocker.write_text("a file, not a folder")
    before = snapshot(base)
    start = time.perf_counter()
    code, text, _ = api_call(lambda: pipe.save(blocker / "run" / "pipeline"))
    lost, added = changes(before, snapshot(base))
    verdict = classify(False, code, text, names=("models", "file"), lost=lost,
                       written=added)
    probe.add("7", "RISCPipeline.save(path) below a file", "pipe.save('$TMP/save/models/run/"
              "pipeline')  # models is a file", code, verdict,
              round(time.perf_counter() - start, 1))


_AUDIT = """
import atexit, os, sys
watched = os.path.realpath(sys.argv.pop(1))
opened = []
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(watched + os.sep):
            opened.append(path)
sys.addaudithook(hook)
atexit.register(lambda: print(f"OPENED {len(opened)}", file=sys.stderr))
from risc_tf.cli import main
sys.exit(main(sys.argv[1:]))
"""


def missing_folder_case(probe: Probe, pipeline: Path, scans: Path) -> None:
    target = probe.tmp / "outputs" / "missing" / "pred.csv"
    (probe.tmp / "outputs").mkdir()
    argv = ["predict", "--pipeline", pipeline, scans, "--output", target]
    done = probe.run([sys.executable, "-c", _AUDIT, scans, *argv])
    opened = re.search(r"OPENED (\d+)", done.stderr)
    unclean = []
    if opened is None:
        unclean.append("the audit hook did not report")
    elif int(opened.group(1)):
        unclean.append(f"{opened.group(1)} image files opened before refusing")
    stderr = "\n".join(ln for ln in done.stderr.splitlines() if not ln.startswith("OPENED"))
    verdict = classify(False, done.code, stderr, names=("missing",), unclean=unclean,
                       written=left(probe.tmp / "outputs", probe.tmp)[1:],
                       note=f"no image file opened (audit hook), {done.seconds:.0f} s"
                       if opened and not int(opened.group(1)) else "")
    probe.add("8", "predict --output DIR/missing/pred.csv",
              probe.show(["risc-tf", *argv]) + "  (under an audit hook)", done.code, verdict,
              done.seconds)


# -- the previous round's six ---------------------------------------------------------------
def input_cases(probe: Probe, pipe, images: np.ndarray) -> None:
    x = images[:6]
    base = np.asarray(pipe.predict_proba(x))
    n = base.shape[-1]

    def rgba():
        one = np.zeros((28, 28, 4), np.uint8)
        one[..., :3] = x[0][..., None]
        one[..., 3] = 255
        p = np.asarray(pipe.predict_proba(one))
        wrong = [] if p.shape == (n,) else [f"shape {p.shape}, expected ({n},): not one image"]
        if p.shape == (n,) and not np.allclose(p, base[0], atol=1e-5):
            wrong.append(f"opaque RGBA of a grey image differs from it by "
                         f"{np.abs(p - base[0]).max():.2g}")
        return wrong

    def integers():
        from risc_tf import RISCPipeline, build_classifier

        model = build_classifier(np.int64(2), (np.int64(32), np.int64(32), 3),
                                 backbone="small")
        wrong = [] if model.output_shape == (None, 2) else [f"{model.output_shape}"]
        other = RISCPipeline(pipe.rotnet, pipe.classifier, batch_size=np.int64(4))
        p = np.asarray(other.predict_proba(x.astype(np.int64)))
        if not np.allclose(p, base, atol=1e-5):
            wrong.append(f"int64 images differ from uint8 by {np.abs(p - base).max():.2g}")
        return wrong

    def uint16():
        p = np.asarray(pipe.predict_proba(x.astype(np.uint16) * 257))
        return [] if np.allclose(p, base, atol=1e-4) else [
            f"uint16 (x257) differs from uint8 by {np.abs(p - base).max():.2g}"]

    for name, fn, shown in (
            ("RGBA single image (API)", rgba, "pipe.predict_proba(rgba_28x28x4)"),
            ("numpy integer inputs (API)", integers,
             "build_classifier(np.int64(2), (np.int64(32), ...)); RISCPipeline(batch_size="
             "np.int64(4)).predict_proba(x.astype(np.int64))"),
            ("uint16 input (API)", uint16, "pipe.predict_proba(x.astype(np.uint16) * 257)")):
        start = time.perf_counter()
        code, text, wrong = api_call(fn)
        verdict = classify(True, code, text, wrong=wrong or ())
        probe.add("prev", name, shown, code, verdict, round(time.perf_counter() - start, 1))


