"""BatchNorm folded into the convolution before it: the same outputs with one pass over the data less.

In inference a BatchNorm layer is a fixed per-channel scale and shift, ``y = (x - mean) / sqrt(var
+ eps) * weight + bias``. When it directly follows a convolution, the convolution's own weights
and bias can absorb it: scale each output channel's filter and shift its bias. Every
Conv-BatchNorm pair becomes one convolution, and the outputs agree to about 1e-6.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["fold_batchnorm"]


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a convolution into it (eval mode only), in place."""
    from timm.layers import BatchNormAct2d

    names = list(module._modules)
    for i, name in enumerate(names):
        child = module._modules[name]
        prev = module._modules[names[i - 1]] if i > 0 else None
        if isinstance(child, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d):
            scale = child.weight / (child.running_var + child.eps).sqrt()  # (C,)
            bias = prev.bias if prev.bias is not None else torch.zeros_like(child.running_mean)
            prev.weight = nn.Parameter((prev.weight * scale.view(-1, 1, 1, 1)).detach())
            prev.bias = nn.Parameter(((bias - child.running_mean) * scale + child.bias).detach())
            # what remains of a BatchNorm + activation layer is its activation
            module._modules[name] = nn.Sequential(child.drop, child.act) if isinstance(child, BatchNormAct2d) \
                else nn.Identity()
        elif child is not None:
            fold_batchnorm(child)
    return module
