"""Checks for the exercises of 07_architectures_and_mixed_precision.ipynb."""

from __future__ import annotations

import math

from . import exercise


def _whole_number(value) -> int:
    if isinstance(value, bool):
        raise TypeError("give a number, not True or False")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{value!r} is not a finite number")
    if number != round(number):
        raise ValueError(f"{value!r} is not a whole number")
    return int(round(number))


@exercise("07.1", "The bytes of resnet18's first activations in float32 and under to_fp16",
          right="{answer[0]:,} bytes in float32, {answer[1]:,} under to_fp16: the same numbers at 2 bytes "
                "each instead of 4, and the backward pass keeps every one of them.")
def first_conv_bytes(answer, learn) -> str | None:
    import torch

    from engine.learning.callbacks import MixedPrecision

    conv = learn.unwrapped.body[0][0]  # resnet's conv1: the first layer of the first body group
    size = learn.dls.preprocessing.size
    x = torch.zeros(learn.dls.batch_size, 3, size, size, device=learn.dls.device)
    with torch.no_grad():
        full = conv(x)
        with MixedPrecision().autocast(learn):  # what to_fp16() runs the forward pass in
            half = conv(x)
    truth = (full.numel() * full.element_size(), half.numel() * half.element_size())
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return "give a pair: (bytes in float32, bytes under to_fp16), e.g. (1000, 500)"
    fp32, fp16 = (_whole_number(a) for a in answer)
    if (fp32, fp16) == truth:
        return None
    if fp32 == truth[0]:
        return "the float32 number is right; how many bytes does one number take in 16 bits?"
    if fp32 in (truth[0] * 4, truth[0] * 2):
        return ("too many: with stride 2 the convolution keeps every second pixel, in both directions "
                "(the padding of 3 keeps the edges)")
    if fp32 * 4 == truth[0]:
        return "a float32 number takes 4 bytes, not 1"
    if fp32 * 16 == truth[0] or fp32 * 64 == truth[0]:
        return "count all of it: every photo of the batch, and one output channel per filter"
    return ("work it out as (photos) x (channels out) x (height out) x (width out) x (bytes per number); "
            "the output has one channel per filter")


@exercise("07.2", "The smallest power-of-two loss scale that keeps a gradient of 1e-10 at full fp16 precision",
          right="1e-10 x {answer:,.0f} is about 1.0e-4, above float16's 6.1e-5; half of it, 5.2e-5, would leave the "
                "gradient with fewer significant bits. GradScaler starts lower (2**16) and doubles its scale "
                "after each 2000 steps without an overflow (Q19).")
def loss_scale(answer) -> str | None:
    import torch

    grad, tiny = 1e-10, torch.finfo(torch.float16).tiny

    def full_precision(scale: float) -> bool:
        return torch.tensor(grad * scale).to(torch.float16).item() >= tiny

    k_truth = next(k for k in range(64) if full_precision(2.0 ** k))
    if isinstance(answer, bool):
        return "give a number, a power of two such as 2**10"
    value = float(answer)
    if not value > 0 or math.isinf(value):
        return "give a positive power of two, such as 2**10"
    if value == k_truth:
        return "that looks like the exponent k; give the scale itself, 2**k"
    k = math.log2(value)
    if k != round(k):
        return "give a power of two (2**k): that is what GradScaler uses, since multiplying by it is exact"
    if round(k) == k_truth:
        return None
    if round(k) < k_truth:
        if torch.tensor(grad * value).to(torch.float16).item() > 0:
            return ("that keeps the gradient from rounding to 0, but below 6.1e-5 float16 keeps only a few "
                    "significant bits: the scaled gradient must reach torch.finfo(torch.float16).tiny")
        return "too small: the scaled gradient still rounds to 0 in float16"
    return "that works, but it is not the smallest: try half of it"


@exercise("07.3", "Predict, then measure: with 64 photos a batch instead of 16, is the 16-bit/float32 memory ratio "
                  "closer to 0.5, farther from it, or the same?",
          right="{answer}: the activations grow with the batch, the 16-bit copies of the weights do not, so with "
                "more photos the activations, which do halve, take a larger share of what is kept.")
def memory_ratio_trend(answer, ratio_16, ratio_64) -> str | None:
    if not isinstance(answer, str) or answer.strip().lower() not in ("closer", "farther", "same"):
        return 'answer with one word: "closer", "farther" or "same"'
    gap_16, gap_64 = abs(ratio_16 - 0.5), abs(ratio_64 - 0.5)
    truth = "same" if abs(gap_16 - gap_64) < 0.01 else ("closer" if gap_64 < gap_16 else "farther")
    if answer.strip().lower() == truth:
        return None
    return ("not what the measurement says: which part of what is kept grows with the number of photos, "
            "and which part (the 16-bit copies of the weights) does not?")
