"""What a prediction returns: one frozen value with everything the model said and saw.

``Predictor.predict(photo)`` gives a ``Prediction``: the breeds' probabilities, the second opinion
of the ImageNet classifier (``ImagenetCheck``), the pixels the model looked at and the time it took.
The web demo shows it and the folder command writes it to a CSV file; neither recomputes a part.

A softmax over the breeds always shares out 100%, so a photo of a car still gets a breed. Four
thresholds turn a prediction into an honest answer (``Prediction.verdict``), and they live here,
together. First, the photo's size:

    too_small  the photo (as decoded) is under ``TOO_SMALL_BELOW`` pixels on its long side: too few
               to show a breed, whatever the models say (a 25x25 face, blown up to 224x224, gets a
               confident dog breed from the float32 model)

When ImageNet sees no cat or dog (``ImagenetCheck.not_a_pet``: under ``NOT_A_PET_BELOW``
on all its cat and dog classes together, and its top class none of them):

    disagree   the breed model is sure all the same (``DISAGREE_FROM`` or more on one breed): both
               opinions are told, neither overrules the other ("a Maine Coon, though ImageNet sees
               a suitcase")
    not_a_pet  otherwise: refused

else:

    unsure     no breed gets ``UNSURE_BELOW`` of the probability
    breed      otherwise

The demo's page (``demo/predict_tab.py``) and the folder command's CSV (``engine/predict.py``)
both show this verdict; neither decides on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TOO_SMALL_BELOW", "NOT_A_PET_BELOW", "UNSURE_BELOW", "DISAGREE_FROM", "ImagenetCheck", "Prediction"]

# The long side, in pixels, under which a photo is too small to judge. The model learnt from photos of
# 175 pixels or more on their long side (the smallest of the sample), presized to 460; scikit-image's
# 25x25 faces blown up to 224 get dog breeds at up to 92% from the float32 model.
TOO_SMALL_BELOW = 64

NOT_A_PET_BELOW = 0.10  # ImageNet's total probability on its cat and dog classes
UNSURE_BELOW = 0.50  # the breed model's top probability
# The breed model's top probability from which it is not overruled by ImageNet's "no cat or dog".
# Calibrated with bench/not_a_pet.py on the shipped model (figures in the README): the 4 sample photos
# ImageNet alone refused (two shiba inus it takes for dingos, a boxer behind a tennis ball, a sphynx
# by a piano) all get over 0.999 from the breed model, while no real non-pet photograph gets more than
# 0.66 (gravel; 0.58 on OpenVINO bf16). 0.95 sits between the two, with room on both sides, and below
# the 98% Maine Coon in a suitcase that the issue saw refused. (scikit-image's 25x25 faces get up to
# 0.92 blown up, but they are "too_small" first: TOO_SMALL_BELOW.) Below
# it, ImageNet's "no cat or dog" still refuses: a real pet with 0.5-0.95 there is refused, which
# none of the sample photos is.
DISAGREE_FROM = 0.95


@dataclass(frozen=True)
class ImagenetCheck:
    """What the body's original ImageNet classifier (1000 kinds of things) sees in the photo.

    Args:
        top: its likeliest classes as (name, probability), best first.
        pet_probability: its total probability on its cat and dog classes.
        top_is_pet: whether its top class is one of those (a dog with a ball may spread its mass).
    """

    top: tuple[tuple[str, float], ...]
    pet_probability: float
    top_is_pet: bool

    @property
    def not_a_pet(self) -> bool:
        """Whether it says "no cat or dog here": under ``NOT_A_PET_BELOW`` on cats and dogs, and its top
        class none of them."""
        return self.pet_probability < NOT_A_PET_BELOW and not self.top_is_pet


@dataclass(frozen=True, eq=False)  # eq=False: the pixels are an array, which has no single truth value
class Prediction:
    """One photo's answer.

    Args:
        label: the likeliest breed.
        probabilities: every breed's probability, in the model's vocabulary order (they sum to 1).
        imagenet: the ImageNet check, or None when the model has no ImageNet classifier.
        pixels: the (size, size, 3) uint8 picture the model saw, after the presize and the resample
            (the unmirrored one when test-time augmentation also looked at the mirror); read-only.
        seconds: the time the prediction took (decoding, preprocessing, the forward pass), without
            any time spent waiting for another prediction's forward pass. In a batch, each photo's
            share of the batch's forward pass.
        cam: where the model looked for ``label``: a (size, size) float32 map in 0..1 over ``pixels``
            (its class-activation map, ``engine/cam.py``), read-only; None when the runtime gave none.
        photo_size: (width, height) of the photo as decoded (a big JPEG may shrink while it is
            decoded, never below the presize); None when the prediction was given only pixels.
    """

    label: str
    probabilities: dict[str, float]
    imagenet: ImagenetCheck | None
    pixels: np.ndarray
    seconds: float
    cam: np.ndarray | None = None
    photo_size: tuple[int, int] | None = None

    @property
    def vocab(self) -> list[str]:
        """The breeds, in the model's order."""
        return list(self.probabilities)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` likeliest breeds as (breed, probability), best first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    @property
    def verdict(self) -> str:
        """What an honest page says: "too_small", "breed", "unsure", "disagree" or "not_a_pet" (see the
        module's docstring)."""
        if self.photo_size is not None and max(self.photo_size) < TOO_SMALL_BELOW:
            return "too_small"
        p = max(self.probabilities.values())
        if self.imagenet is not None and self.imagenet.not_a_pet:
            return "disagree" if p >= DISAGREE_FROM else "not_a_pet"
        if p < UNSURE_BELOW:
            return "unsure"
        return "breed"
