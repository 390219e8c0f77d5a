"""Solutions for 07_architectures_and_mixed_precision.ipynb."""

import math


def first_conv_bytes(learn):
    # 7x7, stride 2, padding 3: (128 + 2*3 - 7) // 2 + 1 = 64 pixels a side; one channel per filter.
    size, batch = learn.dls.preprocessing.size, learn.dls.batch_size
    side = (size + 2 * 3 - 7) // 2 + 1
    numbers = batch * 64 * side * side
    return numbers * 4, numbers * 2  # 4 bytes per float32, 2 per float16 or bfloat16


def loss_scale():
    # The scaled gradient must reach 6.1e-5 (2**-14): 1e-10 * 2**k >= 2**-14, so k >= log2(2**-14 / 1e-10).
    return 2 ** math.ceil(math.log2(2.0 ** -14 / 1e-10))  # 2**20 = 1,048,576


def memory_ratio_trend(ratio_16, ratio_64):
    # The 16-bit weight copies are the same size for any batch; the activations (which halve) grow with it.
    return "closer"


SOLUTIONS = {"07.1": first_conv_bytes, "07.2": loss_scale, "07.3": memory_ratio_trend}
WRONG = {
    "07.1": lambda learn: (learn.dls.batch_size * 64 * 128 * 128 * 4, learn.dls.batch_size * 64 * 128 * 128 * 2),
    "07.2": lambda: 2 ** 5,  # enough to stop it rounding to 0, not enough for full precision
    "07.3": lambda ratio_16, ratio_64: "farther",
}
