"""risc_tf.review: the static HTML review page, checked as text and in a real headless browser."""

from __future__ import annotations

import base64
import doctest
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

import risc_tf.review as review
from risc_tf.review import write_review_page
from risc_tf.thumbnails import thumbnail

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _scan(h: int = 96, w: int = 80, seed: int = 0) -> np.ndarray:
    """A 12-bit, X-ray-like uint16 image with a bright marker in the top-right corner."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    lungs = sum(np.exp(-(((x - c) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2)) for c in (0.3, 0.7))
    image = np.clip(0.8 - 0.5 * lungs + 0.05 * rng.standard_normal((h, w)), 0, 1)
    image[4:12, -14:-6] = 1.0
    return (image * 4095).astype(np.uint16)


def _rows() -> tuple[list[dict], dict]:
    upright = _scan()
    rows = [
        {"path": "a/upright.png", "status": "ok", "class_index": 0, "class_name": "normal",
         "class_probability": 0.91, "rotation": 0.0, "rotation_confidence": 0.97},
        {"path": "a/turned.png", "status": "ok", "class_index": 1, "class_name": "pneumonia",
         "class_probability": 0.88, "rotation": 90.0, "rotation_confidence": 0.95},
        {"path": "b/unsure.dcm", "status": "review", "reason": "rotation confidence 0.41 < 0.8",
         "class_index": 0, "class_name": "normal", "class_probability": 0.6,
         "rotation": 360.0, "rotation_confidence": 0.41},
        {"path": "b/notes.png", "status": "unreadable",
         "reason": "not a PNG file (cannot identify image)"},
    ]
    thumbnails = {
        "a/turned.png": (np.rot90(upright, 1), upright),
        "b/unsure.dcm": (upright.astype(np.float32) / 4095, None),
    }
    return rows, thumbnails


def _images(page: str) -> list[np.ndarray]:
    uris = re.findall(r'<img src="([^"]+)"', page)
    assert all(uri.startswith("data:image/png;base64,") for uri in uris)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
            for uri in uris]


def test_page_summary_cards_and_unreadable_list(tmp_path):
    rows, thumbnails = _rows()
    page = write_review_page(rows, tmp_path / "review.html", thumbnails=thumbnails)
    text = page.read_text(encoding="utf-8")
    assert text.count('<article class="card ') == 2  # rotated + review; 0 and 360 are upright
    for badge in ("ok 2", "review 1", "unreadable 1", "rotated 1"):
        assert f">{badge}</span>" in text
    assert "<strong>4 file(s)</strong>" in text and "To check (2)" in text
    assert text.index("a/turned.png") < text.index("b/unsure.dcm")  # input order
    assert "a/upright.png" not in text  # ok and upright: counted, not shown
    assert "rotated 90°" in text and "0° (upright)" in text
    assert "<td>not a PNG file (cannot identify image)</td>" in text
    shown = _images(text)
    assert len(shown) == 3  # original + corrected, then an original alone
    turned, corrected, unsure = shown
    assert turned.shape == (80, 96) and corrected.shape == (96, 80)
    assert np.array_equal(np.rot90(corrected, 1), turned)  # the same thumbnail, turned
    assert unsure.shape == (96, 80) and unsure.max() == 255


def test_everything_is_escaped_and_nothing_is_external(tmp_path):
    nasty = '<script>alert("x")</script> & \'quotes\''
    rows = [{"path": f"dir/{nasty}.png", "status": "review", "reason": nasty,
             "class_name": "<b>bold</b>", "rotation": 180}]
    text = write_review_page(rows, tmp_path / "p.html", title=nasty,
                             thumbnails={f"dir/{nasty}.png": np.zeros((8, 8), np.uint8)}
                             ).read_text(encoding="utf-8")
    assert "<script" not in text.lower() and "<b>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;quotes&#x27;" in text
    assert not re.search(r"(src|href)=\"(?!data:)", text)  # no external resource
    assert "http://" not in text and "https://" not in text and "@import" not in text
    assert "no preview" in text  # the corrected image was not given


def test_thumbnail_scaling_and_size():
    twelve_bit = np.linspace(100, 4095, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = thumbnail(twelve_bit)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255  # min-max, not /65535
    assert thumbnail(np.full((8, 8), 0.5, np.float32))[0, 0] == 128  # [0, 1] floats: x 255
    assert thumbnail(np.array([[-1.0, 3.0]] * 8).repeat(4, 1)).max() == 255  # others: min-max
    assert np.array_equal(thumbnail(np.eye(8, dtype=bool)), np.eye(8, dtype=np.uint8) * 255)
    assert not thumbnail(np.full((8, 8), 7, np.uint16)).any()  # constant: black
    assert thumbnail(np.zeros((800, 400, 3), np.uint8)).shape == (160, 80, 3)
    assert thumbnail(np.zeros((28, 20, 1), np.uint8)).shape == (28, 20)  # never enlarged
    assert thumbnail(np.zeros((300, 300)), size=64).shape == (64, 64)
    for bad in (np.zeros((8, 8, 4)), np.zeros((2, 8, 8, 3)), np.zeros((0, 5)),
                np.array([["a"]])):
        with pytest.raises(ValueError, match="image must"):
            thumbnail(bad)


def test_rows_are_checked_at_the_boundary(tmp_path):
    good = {"path": "a.png", "status": "ok"}
    cases = [
        ([good, {"path": "b.png", "status": "fine"}], r"rows\[1\] \(b.png\): status must be"),
        ([{"path": "c.png", "status": "ok", "class_probability": 1.5}], "class_probability"),
        ([{"path": "c.png", "status": "ok", "rotation": float("nan")}], "rotation must be"),
        ([{"path": "c.png", "status": "ok", "class_index": -1}], "class_index"),
        ([{"status": "ok"}], r"rows\[0\] needs a 'path'"),
        ([["a.png", "ok"]], r"rows\[0\] must be a dict"),
        (good, "rows must be a sequence"),
    ]
    for rows, message in cases:
        with pytest.raises(ValueError, match=message):
            write_review_page(rows, tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_page_is_written_atomically(tmp_path):
    target = tmp_path / "deep" / "folder" / "review.html"
    write_review_page([{"path": "a.png", "status": "ok"}], target)
    first = target.read_text(encoding="utf-8")
    assert "Nothing to check" in first and "<p class=\"none\">None.</p>" in first
    bad = {"a.png": np.zeros((8, 8, 4))}  # fails while the page is built
    with pytest.raises(ValueError):
        write_review_page([{"path": "a.png", "status": "review"}], target, thumbnails=bad)
    assert target.read_text(encoding="utf-8") == first
    assert os.listdir(target.parent) == ["review.html"]  # no temporary file left


def test_docstring_examples_hold():
    result = doctest.testmod(review)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.slow
def test_page_renders_in_headless_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium): no browser to render")
    rows, thumbnails = _rows()
    page = write_review_page(rows, tmp_path / "review.html", thumbnails=thumbnails)
    shot = tmp_path / "shot.png"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
        "--window-size=1200,900", page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1200, 900)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) > 100  # not blank: text, badges, thumbnails
    background = np.all(np.abs(pixels - [244, 245, 247]) <= 2, axis=1).mean()
    thumb_boxes = np.all(pixels <= 40, axis=1).mean()  # the dark thumbnail frames and images
    assert background > 0.3 and thumb_boxes > 0.01  # the style sheet was applied


def test_to_check_lists_every_review_row_copies_apart_and_a_table_past_the_previews(tmp_path):
    from risc_tf.review import ReviewPage

    rows = [{"path": f"r{i}.png", "status": "review", "reason": "class probability 0.5 < 0.8",
             "rotation": 0.0, "rotated": False} for i in range(5)]
    rows += [{"path": "tilt.png", "status": "review", "reason": "turned about 45 degrees",
              "reason_codes": "off_angle_set", "rotation": 0.0, "estimated_rotation": 45.0,
              "rotated": True, "copy_kind": "straightened"},
             {"path": "q.png", "status": "ok", "rotation": 90.0, "rotated": True,
              "copy_kind": "exact"},
             {"path": "fine.png", "status": "ok", "rotation": 0.0, "rotated": False}]
    with ReviewPage(tmp_path / "p.html", preview_limit=3) as page:
        for row in rows:
            page.add(row, np.zeros((8, 8), np.uint8) if page.wants_preview(row) else None)
    text = page.path.read_text(encoding="utf-8")
    assert "To check (7)" in text and text.count('<article class="card ') == 3
    assert "Previews of the first 3 of 7" in text
    assert all(f"r{i}.png" in text for i in range(5)) and "fine.png" not in text
    assert '<td>45°</td><td>turned about 45 degrees</td>' in text  # in the table
    assert ">exact copies 1</span>" in text and ">straightened copies 1</span>" in text
    assert ">rotated 2</span>" in text and ">review 6</span>" in text
    with pytest.raises(ValueError, match="copy_kind"):
        write_review_page([{"path": "a", "status": "ok", "copy_kind": "fuzzy"}], tmp_path / "x")
