"""The validation preprocessing on the real sample photos: OpenCV's quick path (``validation_pixels``,
what ``Predictor.pixels`` runs) gives the pixels the training-time validation computes."""

import io

import numpy as np
import torch
from PIL import Image

from engine.data.augment import BatchAugment
from engine.data.items import get_image_files
from engine.data.preprocessing import Preprocessing
from engine.data.transforms import MAX_PIXELS, _cv2, jpeg_header, load_array


def test_every_sample_photo_decodes_as_the_decoder_alone_decodes_it(pets_sample):
    cv2 = _cv2()
    reduced = 0
    for path in get_image_files(pets_sample / "images"):
        data = path.read_bytes()
        size = Image.open(io.BytesIO(data)).size
        assert jpeg_header(data) == size, path.name
        reduce = max(r for r in (1, 2, 4, 8) if r == 1 or min(size) // r >= 460)  # the presize still covered
        reduced += reduce > 1
        flags = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce] | cv2.IMREAD_COLOR_RGB
        want = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        assert np.array_equal(load_array(path, min_size=460, max_pixels=MAX_PIXELS), want), path.name
    assert reduced >= 1


def test_validation_pixels_are_the_training_pixels_on_every_sample_photo(pets_sample):
    """Training's validation: ``load_array``, ``Presize``, then ``BatchAugment``'s resample on a tensor."""
    spec = Preprocessing()
    augment = BatchAugment(spec)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    worst, total, photos = 0.0, 0.0, get_image_files(pets_sample / "images")
    for path in photos:
        a = load_array(path, min_size=spec.presize, max_pixels=MAX_PIXELS)
        x = augment(torch.tensor(spec.presizer()(a, train=False)).permute(2, 0, 1)[None].contiguous(), train=False)
        want = ((x * std + mean) * 255).permute(0, 2, 3, 1)[0].numpy()
        got = spec.validation_pixels(a)
        assert got.shape == want.shape == (224, 224, 3) and got.dtype == np.float32
        gap = np.abs(got - want)
        worst, total = max(worst, float(gap.max())), total + float(gap.mean())
    assert len(photos) == 370
    assert worst < 0.01 and total / len(photos) < 0.001  # 0..255 scale: the same pixels
