import math

import numpy as np
import pytest
from PIL import Image

from engine.data.quality import compare_presizing, psnr
from engine.testing import make_image


def test_psnr_values():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[...] = 255
    assert psnr(a, b) == pytest.approx(0.0)
    c = a.copy()
    c[...] = 1
    assert psnr(a, c) == pytest.approx(20 * math.log10(255), abs=1e-9)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, np.zeros((2, 2, 3)))


def _check(report):
    pre, naive = report["presize"], report["naive"]
    assert pre["image"].shape == naive["image"].shape == (224, 224, 3)
    assert pre["empty_fraction"] == 0.0
    assert naive["empty_fraction"] > 0.005  # the rotation's uncovered corners
    assert pre["psnr"] > naive["psnr"] + 3  # dB: one interpolation keeps more detail than three
    return pre, naive


def test_presizing_beats_naive_on_a_generated_photo():
    # Like a camera photo, detail fades at the finest scale (pixel-level noise would mostly
    # measure aliasing of the noise, which no photo of a pet has).
    img = make_image("rgb", size=(250, 188), seed=3).resize((500, 375), Image.Resampling.BICUBIC)
    _check(compare_presizing(img))


def test_presizing_beats_naive_on_real_photos(pets_sample):
    for name in ("pug_16.jpg", "Bengal_143.jpg", "keeshond_149.jpg"):
        path = pets_sample / "images" / name
        if not path.exists():  # names differ: take any photo of that breed
            path = sorted((pets_sample / "images").glob(name.rsplit("_", 1)[0] + "_*.jpg"))[0]
        _check(compare_presizing(path))


def test_more_rotation_means_more_empty_pixels_in_the_naive_order():
    img = make_image("rgb", size=(400, 300), seed=1)
    small = compare_presizing(img, rotate=5, zoom=1.0)["naive"]["empty_fraction"]
    large = compare_presizing(img, rotate=20, zoom=1.0)["naive"]["empty_fraction"]
    assert large > small > 0


def test_without_augmentation_nothing_is_empty():
    r = compare_presizing(Image.new("RGB", (300, 200), (90, 120, 30)), rotate=0, zoom=1.0)
    assert r["naive"]["empty_fraction"] == 0 and r["presize"]["empty_fraction"] == 0
