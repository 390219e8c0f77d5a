import io

import numpy as np
import pytest
from PIL import Image

from engine.data.transforms import Presize, load_image, pil_to_tensor, to_rgb
from engine.testing import SYNTHETIC_KINDS, make_image, write_image


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_load_image_gives_upright_rgb_for_every_kind(tmp_path, kind):
    path = write_image(tmp_path / f"x_{kind}.jpg", kind=kind, size=(80, 60))
    img = load_image(path)
    assert img.mode == "RGB"
    a = np.asarray(img)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    if kind == "exif_rotated":
        # stored sideways with orientation 6: upright it is the same as the plain picture
        assert img.size == make_image("rgb", size=(80, 60)).size
    if kind in ("rgb", "l", "cmyk", "i16"):
        assert img.size == (80, 60)


def test_sixteen_bit_uses_the_whole_range():
    a = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    img = Image.fromarray(a)
    assert img.mode.startswith("I;16")
    out = np.asarray(to_rgb(img))
    assert out.min() == 0 and out.max() == 255  # PIL's own convert would clip everything to 255
    assert len(np.unique(out[..., 0])) > 200


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))
    out = np.asarray(to_rgb(img))
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)


def test_jpeg_draft_decodes_smaller_but_never_below_min_size(tmp_path):
    path = tmp_path / "big.jpg"
    make_image("rgb", size=(2000, 1500)).save(path, quality=90)
    full = load_image(path)
    small = load_image(path, min_size=460)
    assert full.size == (2000, 1500)
    assert small.size == (1000, 750)  # 1/2 scale: 1/4 would be 375 < 460
    assert min(small.size) >= 460


def test_max_pixels_refuses_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("L", (3000, 3000)).save(path, optimize=True)
    with pytest.raises(ValueError, match=r"bomb.png is 3000x3000 = 9 megapixels, more than the 4 allowed"):
        load_image(path, max_pixels=4_000_000)


def _halves(w=300, h=100):
    """Left third red, middle green, right third blue: tells where a crop was taken."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 3, 0] = 255
    a[:, w // 3: 2 * w // 3, 1] = 255
    a[:, 2 * w // 3:, 2] = 255
    return Image.fromarray(a)


def test_presize_crop_centre_on_valid():
    out = Presize(64, "crop")(_halves(), train=False)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[:, :, 1].mean() > 250  # the centre square is the green third


def test_presize_crop_random_position_on_train():
    import random

    pre = Presize(64, "crop")
    rng = random.Random(0)
    means = {tuple(pre(_halves(), train=True, rng=rng).reshape(-1, 3).mean(0).round(-1)) for _ in range(30)}
    assert len(means) > 5  # different positions give different colour mixes
    # a tall image keeps its full width: all three bands are still there, left to right
    strip = Presize(64, "crop")(_halves(w=100, h=300), train=True, rng=rng)
    assert strip[:, :15, 0].mean() > 250 and strip[:, 25:38, 1].mean() > 250 and strip[:, -15:, 2].mean() > 250


def test_presize_squish_and_pad():
    img = _halves(300, 100)
    squished = Presize(60, "squish")(img)
    assert squished.shape == (60, 60, 3)
    assert squished[:, :18, 0].mean() > 250 and squished[:, -18:, 2].mean() > 250  # all three bands kept
    padded = Presize(60, "pad")(img)
    assert padded.shape == (60, 60, 3)
    assert padded[:15].max() == 0 and padded[-15:].max() == 0  # black above and below
    assert padded[25:35].max() == 255


def test_presize_downscale_is_antialiased():
    """A 1-pixel checkerboard shrunk 4x must become flat grey, not a moire of black and white."""
    a = (np.indices((400, 400)).sum(0) % 2 * 255).astype(np.uint8)
    img = Image.fromarray(np.stack([a] * 3, -1))
    out = Presize(100, "crop")(img)
    assert abs(out.mean() - 127.5) < 2 and out.std() < 3


def test_presize_bad_arguments():
    with pytest.raises(ValueError, match="method must be one of"):
        Presize(460, "stretch")
    with pytest.raises(ValueError, match="at least 8 pixels"):
        Presize(4, "crop")


def test_pil_to_tensor_is_chw_uint8_channels_last():
    t = pil_to_tensor(Image.new("RGB", (5, 3), (1, 2, 3)))
    assert t.shape == (3, 3, 5) and str(t.dtype) == "torch.uint8"
    assert t[:, 0, 0].tolist() == [1, 2, 3]
    assert t.stride() == (1, 15, 3)


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_load_array_equals_load_image(tmp_path, kind):
    from engine.data.transforms import load_array

    path = write_image(tmp_path / f"y_{kind}.jpg", kind=kind, size=(80, 60))
    a, b = load_array(path), np.asarray(load_image(path))
    assert a.shape == b.shape and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).mean() <= 1.5  # CMYK conversions round differently


def test_load_array_reduced_jpeg_decoding_and_errors(tmp_path):
    from engine.data.transforms import load_array

    path = tmp_path / "big.jpg"
    make_image("rgb", size=(2000, 1500)).save(path, quality=90)
    assert load_array(path, min_size=460).shape == (750, 1000, 3)  # 1/2 scale; 1/4 would be too small
    assert load_array(path.read_bytes(), min_size=300).shape == (375, 500, 3)  # bytes work too: 1/4
    data = path.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="truncated"):
        load_array(cut)  # not the fast path: PIL's clear error instead of a half-grey picture
    with pytest.raises(ValueError, match="more than the 1 allowed"):
        load_array(path, max_pixels=1_000_000)


def test_a_huge_png_bomb_is_a_clear_error(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (14000, 14000)).save(path, optimize=True)
    assert path.stat().st_size < 100_000  # tiny on disk, 196 megapixels once decoded
    with pytest.raises(ValueError, match="bomb.png has too many pixels to decode safely"):
        load_image(path)


def test_preprocessing_normalize_is_the_textbook_formula_in_one_affine_map():
    import torch

    from engine.data.preprocessing import Preprocessing

    spec = Preprocessing(mean=(0.5, 0.25, 0.125), std=(0.5, 0.25, 2.0))
    x = torch.tensor([0.0, 127.5, 255.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2).contiguous()
    want = torch.tensor([(0 - 0.5) / 0.5, (0.5 - 0.25) / 0.25, (1 - 0.125) / 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(spec.normalize(x), want.expand(1, 3, 2, 2), atol=1e-6)
    y = x.clone()
    assert spec.normalize(y, in_place=True) is y and torch.allclose(y, want.expand(1, 3, 2, 2), atol=1e-6)
    assert torch.equal(x[0, 1], torch.full((2, 2), 127.5))  # not in place: the input is kept


def test_preprocessing_denormalize_undoes_normalize_for_showing():
    import torch

    from engine.data.preprocessing import Preprocessing

    spec = Preprocessing(mean=(0.5, 0.25, 0.125), std=(0.5, 0.25, 2.0))
    x = torch.tensor([0.0, 63.75, 255.0]).view(1, 3, 1, 1)
    assert torch.allclose(spec.denormalize(spec.normalize(x)), x / 255, atol=1e-6)
    assert spec.denormalize(torch.full((1, 3, 1, 1), 100.0)).max() == 1  # clipped to the pixel range


def _jpeg_bytes(size=(64, 48), **save) -> bytes:
    buf = io.BytesIO()
    make_image("rgb", size=size).save(buf, "JPEG", quality=90, **save)
    return buf.getvalue()


@pytest.mark.parametrize("save", [{}, {"progressive": True}, {"subsampling": 0}, {"exif": b"Exif\x00\x00" + bytes(64)},
                                  {"icc_profile": bytes(70_000)}])  # an ICC profile longer than one segment
def test_jpeg_header_reads_the_size_pil_reads(save):
    from engine.data.transforms import jpeg_header

    for size in [(64, 48), (1, 1), (1000, 20), (2001, 1503)]:
        data = _jpeg_bytes(size, **save)
        assert jpeg_header(data) == Image.open(io.BytesIO(data)).size == size


def test_jpeg_header_leaves_what_it_does_not_follow_to_pil():
    from engine.data.transforms import jpeg_header

    data = _jpeg_bytes()
    sof = data.index(b"\xff\xc0")
    frame = data[sof:sof + 2 + (data[sof + 2] << 8 | data[sof + 3])]
    app0 = 4 + (data[4] << 8 | data[5])  # the end of the first segment
    assert jpeg_header(data[:app0] + b"junk" + data[app0:]) is None  # bytes between markers
    assert jpeg_header(data[:sof] + frame + data[sof:]) is None  # two frame headers
    assert jpeg_header(data[:sof + 6]) is None  # cut inside the frame header
    assert jpeg_header(data[:data.index(b"\xff\xda")]) is None  # no scan: no end to the header
    assert jpeg_header(data[:sof + 5] + bytes(4) + data[sof + 9:]) is None  # a 0 x 0 frame
    assert jpeg_header(b"\xff\xd8\xff\xd8" + data[2:]) is None  # a marker without a length, out of place


def test_load_array_decodes_jpegs_itself_and_checks_the_size_it_got(tmp_path, monkeypatch):
    import engine.data.transforms as T

    def no_pil(*args, **kwargs):
        raise AssertionError("went to PIL")

    monkeypatch.setattr(T, "load_image", no_pil)
    assert T.load_array(_jpeg_bytes((2001, 1503)), min_size=460).shape == (752, 1001, 3)  # 1/2 scale, rounded up
    assert T.load_array(_jpeg_bytes((1999, 977), progressive=True), min_size=200).shape == (245, 500, 3)  # 1/4
    rotated = write_image(tmp_path / "r.jpg", kind="exif_rotated", size=(80, 60))
    assert T.load_array(rotated).shape == (60, 80, 3)  # stored sideways, decoded upright
    monkeypatch.setattr(T, "jpeg_header", lambda data: (2001, 1503))  # a header reader and a decoder that disagree
    with pytest.raises(AssertionError, match="went to PIL"):
        T.load_array(_jpeg_bytes((64, 48)))


def test_load_array_refuses_a_jpeg_that_claims_too_many_pixels_before_decoding_it():
    from engine.data.transforms import MAX_PIXELS, jpeg_header, load_array

    data = _jpeg_bytes((64, 48))
    sof = data.index(b"\xff\xc0")
    claim = (6000).to_bytes(2, "big") + (8000).to_bytes(2, "big")  # height, width
    bomb = data[:sof + 5] + claim + data[sof + 9:]  # 64 x 48 pixels that claim to be 8000 x 6000
    assert jpeg_header(bomb) == (8000, 6000)
    with pytest.raises(ValueError, match=r"8000x6000 = 48 megapixels, more than the 40 allowed"):
        load_array(bomb, max_pixels=MAX_PIXELS)
    app0 = 4 + (data[4] << 8 | data[5])  # the end of the first segment
    junk = data[:app0] + b"junk" + data[app0:]  # bytes between two markers: PIL decodes it, as before
    assert jpeg_header(junk) is None
    assert np.array_equal(load_array(junk), np.asarray(load_image(io.BytesIO(junk))))


@pytest.mark.parametrize("kind", SYNTHETIC_KINDS)
def test_rgb_array_converts_a_picture_in_memory_as_to_rgb_does(kind):
    from engine.data.transforms import rgb_array

    img = make_image(kind, size=(40, 30))
    a = np.asarray(img)  # an array holds what PIL's fromarray reads back: (H, W) gray, (H, W, 4) RGBA, ...
    for got, want in ((rgb_array(img), to_rgb(img)), (rgb_array(a), to_rgb(Image.fromarray(a)))):
        want = np.asarray(want)
        assert got.dtype == np.uint8 and got.ndim == 3 and got.shape == want.shape and np.array_equal(got, want)


def test_rgb_array_hands_an_rgb_array_on_without_copying_it():
    from engine.data.transforms import rgb_array

    a = np.asarray(make_image("rgb", size=(40, 30)))
    assert rgb_array(a) is a
    flipped = rgb_array(a[:, ::-1])  # a view with a negative stride: made contiguous for OpenCV
    assert flipped.flags.c_contiguous and np.array_equal(flipped, a[:, ::-1])
    rgba = np.dstack([a, np.zeros(a.shape[:2], np.uint8)])  # fully transparent: white, as to_rgb makes it
    assert (rgb_array(rgba) == 255).all()
