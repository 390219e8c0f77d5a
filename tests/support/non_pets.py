"""Real photographs that are not cats or dogs, all available offline: what the "not a pet" decision
is measured on (``bench/not_a_pet.py``) and tested against (``tests/test_not_a_pet.py``).

They come from scikit-image's data module (a test dependency, never imported by ``engine/`` or
``demo/``) and from matplotlib's sample data (``grace_hopper.jpg``). Left out on purpose:

- ``skimage.data.cat`` and ``chelsea``: they ARE cat photos (the same tabby); ``CAT_PHOTOS`` has
  them, for the other side of the check (a cat must not be refused).
- drawings and generated pictures, which are not photographs: ``binary_blobs``, ``checkerboard``,
  ``colorwheel``, ``horse`` (a silhouette), ``logo``, ``shepp_logan_phantom``.
- the images scikit-image downloads on first use (``eagle``, ``lily``, ``brain``, ...): not offline.

``lfw_subset`` (200 faces of 25x25 pixels from Labeled Faces in the Wild) are real photographs too,
but tiny crops: ``faces()`` gives them apart, and the bench reports them as their own group.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SKIMAGE_NON_PETS", "CAT_PHOTOS", "non_pet_photos", "faces", "cat_photos"]

# Real photographs in scikit-image's data module that need no download (scikit-image 0.22 to 0.26).
SKIMAGE_NON_PETS = ("astronaut", "brick", "camera", "cell", "clock", "coffee", "coins", "grass", "gravel",
                    "hubble_deep_field", "immunohistochemistry", "microaneurysms", "moon", "page", "retina",
                    "rocket", "text")
CAT_PHOTOS = ("cat", "chelsea")


def _rgb(image: np.ndarray) -> np.ndarray:
    """A (H, W, 3) uint8 picture from scikit-image's gray, RGB or 0..1 float images."""
    if image.dtype != np.uint8:
        image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])


def non_pet_photos() -> dict[str, np.ndarray]:
    """Every real non-pet photograph above, by name, as (H, W, 3) uint8 RGB arrays."""
    import matplotlib.cbook
    from PIL import Image
    from skimage import data

    photos = {name: _rgb(getattr(data, name)()) for name in SKIMAGE_NON_PETS}
    left, right, _ = data.stereo_motorcycle()  # two photographs of a motorcycle, from two cameras
    photos["stereo_motorcycle_left"], photos["stereo_motorcycle_right"] = _rgb(left), _rgb(right)
    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as hopper:
        photos["grace_hopper (matplotlib)"] = np.asarray(hopper.convert("RGB"))
    return photos


def faces() -> dict[str, np.ndarray]:
    """The 200 tiny face photographs of ``skimage.data.lfw_subset``, by name."""
    from skimage import data

    return {f"lfw_subset[{i}]": _rgb(face) for i, face in enumerate(data.lfw_subset())}


def cat_photos() -> dict[str, np.ndarray]:
    """scikit-image's two cat photos (the same tabby, Chelsea): not refused as "not a pet"."""
    from skimage import data

    return {name: _rgb(getattr(data, name)()) for name in CAT_PHOTOS}
