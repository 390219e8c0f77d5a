import math

import pytest
import torch
import torch.nn.functional as F

from engine.data import augment as A
from engine.data.augment import AugmentOptions, AugmentParams, BatchAugment, warp_images
from engine.data.preprocessing import Preprocessing


def smooth_images(n=2, size=128, seed=0):
    """Smooth, band-limited pictures (0..255): interpolation error on them is small and measurable."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    imgs = []
    for _ in range(n):
        f = torch.rand(3, 3, generator=g) * 3 + 0.5
        ph = torch.rand(3, 3, generator=g) * 6
        chans = [torch.sin(f[c, 0] * xs + ph[c, 0]) * torch.cos(f[c, 1] * ys + ph[c, 1]) + 0.3 * torch.sin(
            f[c, 2] * (xs + ys) + ph[c, 2]) for c in range(3)]
        imgs.append(torch.stack(chans))
    x = torch.stack(imgs)
    return (x - x.amin()) / (x.amax() - x.amin()) * 255


def test_identity_equals_plain_resize():
    x = smooth_images(3, 96)
    ident = AugmentParams.identity(3).matrices()
    out = warp_images(x, ident, (40, 40))
    ref = F.interpolate(x, size=(40, 40), mode="bilinear", align_corners=False, antialias=False)
    torch.testing.assert_close(out, ref, atol=1e-3, rtol=0)


def test_validation_path_is_identity_then_normalize():
    x8 = smooth_images(2, 96).round().to(torch.uint8)
    aug = BatchAugment(Preprocessing(size=48, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)))
    out = aug(x8, train=False)
    ref = F.interpolate(x8.float(), size=(48, 48), mode="bilinear", align_corners=False) / 255
    torch.testing.assert_close(out, (ref - 0.5) / 0.5, atol=1e-4, rtol=0)
    torch.testing.assert_close(aug.decode(out), ref, atol=1e-4, rtol=0)


def test_matrices_move_points_as_expected():
    pt = torch.tensor([1.0, 0.0, 1.0])
    assert torch.allclose(A.flip_matrix(torch.tensor([True]))[0] @ pt, torch.tensor([-1.0, 0.0, 1.0]))
    r = A.rotation_matrix(torch.tensor([90.0]))[0] @ pt
    assert torch.allclose(r, torch.tensor([0.0, 1.0, 1.0]), atol=1e-6)
    z = A.zoom_matrix(torch.tensor([2.0]), torch.tensor([0.5]), torch.tensor([0.0]))[0] @ pt
    assert torch.allclose(z, torch.tensor([1.0, 0.0, 1.0]))  # 1/2 + 0.5
    c = A.crop_matrix(torch.tensor([0.5]), torch.tensor([0.25]), torch.tensor([0.1]), torch.tensor([-0.2]))[0]
    assert torch.allclose(c @ torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.6, 0.05, 1.0]))


def test_warp_maps_corners_to_their_targets_and_zero_is_identity():
    assert torch.allclose(A.warp_matrix(torch.zeros(1), torch.zeros(1)), torch.eye(3)[None], atol=1e-6)
    m = A.warp_matrix(torch.tensor([0.2]), torch.tensor([-0.1]))[0]
    for (x, y), (u, v) in zip([(-1, -1), (1, -1), (-1, 1), (1, 1)],
                              [(-1 + 0.1, -1 - 0.2), (1 - 0.1, -1 + 0.2), (-1 - 0.1, 1 + 0.2), (1 + 0.1, 1 - 0.2)]):
        p = m @ torch.tensor([float(x), float(y), 1.0])
        assert torch.allclose(p[:2] / p[2], torch.tensor([u, v]), atol=1e-5)
    assert m[2, :2].abs().sum() > 0  # a true perspective, not an affine map


def test_rotation_respects_aspect_ratio():
    """On a non-square image a 90 degree turn must still map a pixel distance to the same distance."""
    m = A.rotation_matrix(torch.tensor([90.0]), aspect=2.0)[0]  # width = 2 x height
    p = m @ torch.tensor([0.5, 0.0, 1.0])  # 0.5 of the half-width = 0.5 * W/2 pixels to the right
    # ... lands 0.5 * W/2 = W/4 = H/2 pixels below the centre: y = 1.0 in normalized units
    assert torch.allclose(p[:2], torch.tensor([0.0, 1.0]), atol=1e-6)


STEP_PARAMS = dict(flip=torch.tensor([True, False]), rotate=torch.tensor([8.0, -6.0]),
                   zoom=torch.tensor([1.08, 1.05]), zoom_cx=torch.tensor([0.03, -0.02]),
                   zoom_cy=torch.tensor([-0.02, 0.01]), warp_x=torch.tensor([0.08, -0.05]),
                   warp_y=torch.tensor([-0.04, 0.06]), crop_w=torch.tensor([0.7, 0.75]),
                   crop_h=torch.tensor([0.72, 0.7]), crop_cx=torch.tensor([0.05, -0.04]),
                   crop_cy=torch.tensor([0.02, 0.03]))


def test_composed_equals_step_by_step():
    """One grid_sample of the composed matrix == every step applied in turn, up to interpolation error."""
    x = smooth_images(2, 192)
    p = AugmentParams.identity(2)
    for k, v in STEP_PARAMS.items():
        setattr(p, k, v)
    composed = warp_images(x, p.matrices(), (64, 64))

    steps = [A.flip_matrix(p.flip), A.rotation_matrix(p.rotate), A.zoom_matrix(p.zoom, p.zoom_cx, p.zoom_cy),
             A.warp_matrix(p.warp_x, p.warp_y)]
    y = x
    for m in steps:  # each step at full resolution, with its own interpolation
        y = warp_images(y, m, (192, 192))
    step_by_step = warp_images(y, A.crop_matrix(p.crop_w, p.crop_h, p.crop_cx, p.crop_cy), (64, 64))

    err = (composed - step_by_step).abs()
    assert err.mean() < 1.0  # out of 255: the difference is interpolation blur only
    assert err.max() < 12.0
    # and the parameters matter: without them the result is far away
    plain = warp_images(x, A.crop_matrix(p.crop_w, p.crop_h, p.crop_cx, p.crop_cy), (64, 64))
    assert (plain - step_by_step).abs().mean() > 10 * err.mean()


def test_one_grid_sample_per_batch(monkeypatch):
    calls = []
    real = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(A.F, "grid_sample", counting)
    aug = BatchAugment(Preprocessing(size=32))
    aug(torch.randint(0, 255, (6, 3, 80, 80), dtype=torch.uint8), train=True)
    assert calls == [torch.Size([6, 3, 80, 80])]


def test_each_image_gets_its_own_parameters():
    aug = BatchAugment(Preprocessing(size=48), AugmentOptions(p_affine=1.0, p_lighting=1.0))
    g = torch.Generator().manual_seed(0)
    p = aug.sample(16, g)
    for name in ("rotate", "zoom", "warp_x", "warp_y", "zoom_cx", "contrast", "brightness"):
        assert len(torch.unique(getattr(p, name))) == 16, name
    assert len(torch.unique(p.crop_w * p.crop_h)) == 16  # a different crop area for every image
    assert 0 < p.flip.sum() < 16
    x8 = smooth_images(1, 96).round().to(torch.uint8).repeat(8, 1, 1, 1)
    out = aug(x8, train=True, generator=g)
    diffs = [(out[i] - out[j]).abs().mean() for i in range(8) for j in range(i + 1, 8)]
    assert min(diffs) > 0.01  # all eight copies of the same image came out differently


def test_sampled_parameters_stay_in_range():
    aug = BatchAugment(Preprocessing(), AugmentOptions(max_rotate=10, max_zoom=1.1, max_warp=0.2, min_scale=0.75,
                                                       p_affine=1.0))
    p = aug.sample(2000, torch.Generator().manual_seed(1))
    assert p.rotate.abs().max() <= 10 and p.rotate.abs().max() > 9
    assert p.zoom.min() >= 1 and p.zoom.max() <= 1.1
    area = p.crop_w * p.crop_h
    assert area.min() >= 0.75 - 1e-6 and area.max() <= 1  # clamping a side to 1 keeps the area >= min_scale
    assert (p.crop_cx.abs() <= 1 - p.crop_w + 1e-6).all()  # the crop window stays inside the image
    assert (p.zoom_cx.abs() <= 1 - 1 / p.zoom + 1e-6).all()


def test_same_generator_seed_same_batch():
    x8 = torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
    aug = BatchAugment(Preprocessing(size=32))
    a = aug(x8, generator=torch.Generator().manual_seed(5))
    b = aug(x8, generator=torch.Generator().manual_seed(5))
    c = aug(x8, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert (a - c).abs().mean() > 0.01


def test_reflection_padding_fills_corners():
    x8 = torch.full((1, 3, 64, 64), 200, dtype=torch.uint8)
    p = AugmentParams.identity(1)
    p.rotate = torch.tensor([45.0])  # corners come from outside the image
    aug = BatchAugment(Preprocessing(size=64, mean=(0, 0, 0), std=(1, 1, 1)))
    out = aug(x8, params=p)
    assert out.min() > 0.7  # no black corners: reflected picture instead
    zeros = BatchAugment(aug.preprocessing, AugmentOptions(padding_mode="zeros"))(x8, params=p)
    assert zeros.min() < 0.1


def test_lighting_changes_brightness_and_contrast():
    x8 = smooth_images(1, 64).round().to(torch.uint8)
    aug = BatchAugment(Preprocessing(size=64, mean=(0, 0, 0), std=(1, 1, 1)))
    base = aug(x8, train=False)
    p = AugmentParams.identity(1)
    p.brightness = torch.tensor([0.1])
    brighter = aug(x8, params=p)
    assert (brighter - base).mean().item() == pytest.approx(0.1, abs=0.02)
    p = AugmentParams.identity(1)
    p.contrast = torch.tensor([0.5])
    flatter = aug(x8, params=p)
    assert flatter.std() < base.std() * 0.6


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="min_scale"):
        AugmentOptions(min_scale=0)
    with pytest.raises(ValueError, match="max_zoom"):
        AugmentOptions(max_zoom=0.9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_same_result_on_gpu():
    x8 = torch.randint(0, 255, (4, 3, 96, 96), dtype=torch.uint8)
    aug = BatchAugment(Preprocessing(size=48))
    p = aug.sample(4, torch.Generator().manual_seed(0))
    cpu = aug(x8, params=p)
    gpu = aug(x8.cuda(), params=p)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-3, rtol=0)


def test_rotation_matrix_is_orthonormal_for_square_images():
    m = A.rotation_matrix(torch.tensor([33.0]))[0, :2, :2]
    torch.testing.assert_close(m @ m.T, torch.eye(2), atol=1e-6, rtol=0)
    assert m.det().item() == pytest.approx(1.0, abs=1e-6)
    assert math.degrees(math.atan2(m[1, 0], m[0, 0])) == pytest.approx(33.0, abs=1e-4)


def test_safe_to_call_from_several_threads():
    """A web server predicts from several threads with one BatchAugment: buffers must not mix."""
    from concurrent.futures import ThreadPoolExecutor

    aug = BatchAugment(Preprocessing(size=48))
    inputs = [torch.full((1, 3, 96, 96), 20 * i, dtype=torch.uint8) for i in range(8)]
    expected = [aug(x, train=False) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            results = list(pool.map(lambda x: aug(x, train=False), inputs))
            for got, want in zip(results, expected):
                torch.testing.assert_close(got, want)


def test_fused_lighting_equals_lighting_then_the_preprocessing_normalization():
    """light_and_normalize's one multiply-add and clamp == lighting, clipping, then Preprocessing.normalize."""
    spec = Preprocessing(size=48)  # ImageNet's statistics: a different affine map per channel
    aug = BatchAugment(spec)
    x8 = smooth_images(4, 96).round().to(torch.uint8)
    p = AugmentParams.identity(4)
    p.contrast, p.brightness = torch.tensor([0.6, 1.0, 1.5, 1.2]), torch.tensor([0.1, -0.1, 0.0, 0.3])
    got = aug(x8, params=p)
    x = F.interpolate(x8.float(), size=(48, 48), mode="bilinear", align_corners=False)
    lit = ((x / 255 - 0.5) * p.contrast.view(-1, 1, 1, 1) + 0.5 + p.brightness.view(-1, 1, 1, 1)).clamp(0, 1)
    torch.testing.assert_close(got, spec.normalize(lit * 255), atol=1e-4, rtol=0)
    assert (lit == 1).any() and (lit == 0).any()  # the clamp was exercised at both ends


def test_specs_are_frozen_and_checked():
    options = AugmentOptions(max_rotate=20)
    with pytest.raises(AttributeError):
        options.max_rotate = 30
    aug = BatchAugment(Preprocessing(size=48), options)
    assert (aug.preprocessing.size, aug.options.max_rotate) == (48, 20)
    assert aug.sample(500, torch.Generator().manual_seed(0)).rotate.abs().max() > 10  # the options are used
    with pytest.raises(TypeError, match="AugmentOptions"):
        BatchAugment(Preprocessing(), {"max_rotate": 20})
