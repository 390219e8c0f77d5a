"""What a prediction returns: one frozen value with everything the model said and saw.

``Predictor.predict(photo)`` gives a ``Prediction``: the breeds' probabilities, the second opinion
of the ImageNet classifier (``ImagenetCheck``), the pixels the model looked at and the time it took.
The web demo shows it and the folder command writes it to a CSV file; neither recomputes a part.

A softmax over the breeds always shares out 100%, so a photo of a car still gets a breed. Two
thresholds turn a prediction into an honest answer (``Prediction.verdict``), and they live here,
together:

    not_a_pet  ImageNet puts under ``NOT_A_PET_BELOW`` on all its cat and dog classes together and
               its top class is not one of them
    unsure     no breed gets ``UNSURE_BELOW`` of the probability
    breed      otherwise
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NOT_A_PET_BELOW", "UNSURE_BELOW", "ImagenetCheck", "Prediction"]

NOT_A_PET_BELOW = 0.10  # ImageNet's total probability on its cat and dog classes
UNSURE_BELOW = 0.50  # the breed model's top probability


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
    """

    label: str
    probabilities: dict[str, float]
    imagenet: ImagenetCheck | None
    pixels: np.ndarray
    seconds: float
    cam: np.ndarray | None = None

    @property
    def vocab(self) -> list[str]:
        """The breeds, in the model's order."""
        return list(self.probabilities)

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` likeliest breeds as (breed, probability), best first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    @property
    def verdict(self) -> str:
        """What an honest page says: "not_a_pet", "unsure" or "breed" (see the module's docstring)."""
        if self.imagenet is not None and self.imagenet.not_a_pet:
            return "not_a_pet"
        if max(self.probabilities.values()) < UNSURE_BELOW:
            return "unsure"
        return "breed"
