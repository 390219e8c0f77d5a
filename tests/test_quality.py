import math

import numpy as np
import pytest
from PIL import Image

from engine.data.quality import compare_presizing, presizing_ablation, psnr
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


def _photo():
    return make_image("rgb", size=(250, 188), seed=3).resize((500, 375), Image.Resampling.BICUBIC)


def test_naive_crop_gives_both_pipelines_the_same_view():
    wide, same = compare_presizing(_photo()), compare_presizing(_photo(), naive_crop=True)
    pre, naive = _check(same)
    middle = slice(32, 192)  # inside the photo for both: away from the rotation's corners
    assert psnr(naive["reference"][middle, middle], pre["reference"][middle, middle]) > 40
    assert psnr(wide["naive"]["reference"][middle, middle], pre["reference"][middle, middle]) < 30  # a wider view
    # The crop does not remove the naive corners: they depend on the rotation of the image it rotates.
    assert naive["empty_fraction"] == wide["naive"]["empty_fraction"]
    assert (naive["interpolations"], pre["interpolations"]) == (3, 2)
    assert same["params"]["naive_crop"] and abs(same["params"]["crop"] - math.sqrt(0.75)) < 2 / 375


@pytest.mark.parametrize("rotate", [10.0, 25.0])
def test_ablation_attributes_each_gain(rotate):
    report = presizing_ablation(_photo(), rotate=rotate)
    naive, one_warp, large, pre = report["variants"].values()
    assert list(report["variants"]) == ["naive", "one_warp", "large_source", "presize"]
    same = compare_presizing(_photo(), rotate=rotate, naive_crop=True)
    assert np.array_equal(naive["image"], same["naive"]["image"])  # its two ends are compare_presizing's
    assert np.array_equal(pre["image"], same["presize"]["image"])
    # empty pixels: the margin and nothing else; it is finite, so a large rotation reaches past it
    assert naive["empty_fraction"] == one_warp["empty_fraction"] == large["empty_fraction"] > 0.005
    if rotate == 10:
        assert pre["empty_fraction"] == 0
    else:
        assert 0 < pre["empty_fraction"] < naive["empty_fraction"] / 10
    # detail, on the pixels all four cover: fewer interpolations, then the large source; not the margin
    assert 0.8 < report["covered"] < 1
    assert one_warp["psnr"] > naive["psnr"] + 0.5
    assert large["psnr"] > one_warp["psnr"] + 3
    assert abs(pre["psnr"] - large["psnr"]) < 1.5
    assert [v["interpolations"] for v in (naive, one_warp, large, pre)] == [3, 2, 2, 2]


def test_ablation_on_a_real_photo(pets_sample):
    path = sorted((pets_sample / "images").glob("*.jpg"))[0]
    naive, one_warp, large, pre = presizing_ablation(path)["variants"].values()
    assert pre["empty_fraction"] == 0 < naive["empty_fraction"]
    assert naive["psnr"] < one_warp["psnr"] < large["psnr"]
