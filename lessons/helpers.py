"""Helper code the lesson notebooks share, kept out of their cells so that each cell shows one idea.

Each notebook's helpers have their own section below, headed with its number. They are small on
purpose: in Jupyter, ``helper??`` shows the source of any of them.
"""

from __future__ import annotations

# --- notebooks 03 and 03b ---------------------------------------------------------------------------


def float32_copy(predictor):
    """A float32 copy of the predictor's network, on the CPU, in eval mode.

    The predictor answers in the precision of this machine's fastest runtime (bfloat16 on some CPUs,
    float16 on a GPU); numbers computed with this copy are the same on every machine."""
    import copy

    import torch

    return copy.deepcopy(predictor.model).to("cpu", torch.float32).eval()


def model_inputs(predictor, photos):
    """The network's input for some photos (paths or pictures), made as the predictor makes it:
    (n, 3, 224, 224), float32."""
    import torch

    x = torch.cat([torch.from_numpy(predictor.pixels(p)) for p in photos])  # (n, 224, 224, 3), pixels 0..255
    return predictor.preprocessing.normalize(x.permute(0, 3, 1, 2)).float()


def float32_logits(net, predictor, photos):
    """The raw outputs of ``net`` (see ``float32_copy``), one row per photo: float32 on the CPU."""
    import torch

    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        return net(model_inputs(predictor, photos))


def pooled_features(net, predictor, photos, batch_size=32):
    """What the body of ``net`` hands its head: the pooled features, one row per photo, on the CPU."""
    import torch

    out = []
    for i in range(0, len(photos), batch_size):
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            out.append(net.head[0](net.body(model_inputs(predictor, photos[i:i + batch_size]))))
    return torch.cat(out)


def first_of_each_label(labels, is_valid, per_label=4):
    """The row numbers of the first ``per_label`` training rows (``is_valid`` False) of every label."""
    from collections import Counter

    seen, rows = Counter(), []
    for i, (label, valid) in enumerate(zip(labels, is_valid)):
        if not valid and seen[label] < per_label:
            rows.append(i)
            seen[label] += 1
    return rows
