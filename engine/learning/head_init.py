"""Start the new head from the class averages instead of from random numbers.

A frozen body turns every photo into a fixed feature vector. The simplest classifier on such
vectors: average the vectors of each breed, and call a new photo the breed whose average it is
closest to. Linear discriminant analysis (LDA) makes "closest" take the spread of the features
into account: it assumes every breed's vectors scatter around their average in the same way
(one covariance matrix ``S`` shared by all classes). Then the log-probability of class ``c`` is,
up to a term that is the same for every class, a *linear* function of the features ``x``:

    score_c(x) = x @ w_c + b_c,    w_c = S^-1 m_c,    b_c = -1/2 m_c @ S^-1 m_c + log(prior_c)

That is exactly what the head's last linear layer computes, so the head can start from LDA's
weights: a good classifier before the first gradient step, in closed form (one linear solve).

With 8 photos per breed and 1280 features, ``S`` cannot be estimated well (it has more numbers
than there are photos), so it is *shrunk* towards a multiple of the identity:
``(1 - shrinkage) S + shrinkage * mean(diag S) * I``. Shrinkage 1 is the nearest class average
(plain Euclidean distance); 0 is textbook LDA.

The scores rank the classes well but are far too sure of themselves: in 1280 dimensions the
Gaussian model's log-probabilities are huge numbers, and softmax turns them into 100% for the
top class, right or wrong. So they are divided by a *temperature*, chosen the honest way: score
every training photo with LDA fitted on the *other* photos (k-fold), and pick the temperature that
minimises the cross-entropy of those scores ("temperature scaling", Guo et al. 2017). The
ranking, and so the error rate, does not change; the probabilities become ones a person can read
(and the demo's "not sure" verdict can use).

Cross-validation on the training photos of the sample chose the shrinkage (0.9); the README's
design notes have the figures.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..numerics import check_finite

__all__ = ["lda_weights", "fit_temperature", "lda_temperature", "init_head_lda"]

MAX_SPREAD = 50.0  # the widest gap allowed between a photo's best and worst scores (see lda_temperature)


def lda_weights(features: Tensor, targets: Tensor, n_classes: int, shrinkage: float = 0.9) -> tuple[Tensor, Tensor]:
    """Shrinkage-LDA scores as a linear layer: ``(weight (n_classes, n_features), bias (n_classes,))``.

    Args:
        features: (n, n_features) one feature vector per photo (several views of a photo are fine:
            they count as more photos).
        targets: (n,) class indices.
        n_classes: the number of classes. A class without any photo gets the overall average and a
            low prior, so it is never predicted until training teaches it.
        shrinkage: 0 (textbook LDA) to 1 (nearest class average); see the module docstring.
    """
    if features.ndim != 2 or targets.shape != features.shape[:1]:
        raise ValueError(f"features (n, n_features) and targets (n,) expected, got {tuple(features.shape)} "
                         f"and {tuple(targets.shape)}")
    if not 0.0 <= shrinkage <= 1.0:
        raise ValueError(f"shrinkage={shrinkage}: expected a number from 0 (plain LDA) to 1 (nearest class average)")
    check_finite(features, "the body's features", hint="check the photos and the body's weights, or train "
                 "without mixed precision (to_fp32())")
    x = features.double()  # the covariance solve wants the extra precision
    counts = torch.bincount(targets, minlength=n_classes).double()  # (n_classes,)
    sums = torch.zeros(n_classes, x.shape[1], dtype=x.dtype).index_add_(0, targets, x)
    means = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], x.mean(0))  # (n_classes, d)
    resid = x - means[targets]  # each photo's offset from its class average
    cov = resid.T @ resid / len(x)  # (d, d), shared by all classes
    scale = cov.diagonal().mean()
    # the covariance has rank at most (photos - classes): with no shrinkage it must be full
    singular = scale <= 0 or (shrinkage == 0 and len(x) - int((counts > 0).sum()) < x.shape[1])
    cov = (1 - shrinkage) * cov + shrinkage * scale * torch.eye(x.shape[1], dtype=x.dtype)
    try:
        if singular:
            raise torch.linalg.LinAlgError("singular")
        w = torch.linalg.solve(cov, means.T).T  # (n_classes, d): S^-1 m_c for every class
    except torch.linalg.LinAlgError:
        raise ValueError(f"the features' covariance cannot be inverted (shrinkage={shrinkage}, {len(x)} photos, "
                         f"{x.shape[1]} features): use a shrinkage above 0, or check that the photos' features "
                         "are not all the same within each class") from None
    prior = (counts + 0.5) / (counts.sum() + 0.5 * n_classes)  # an empty class keeps a small prior
    b = -0.5 * (w * means).sum(1) + prior.log()
    return w.float(), b.float()


def fit_temperature(logits: Tensor, targets: Tensor, lo: float = 1e-3, hi: float = 1e4) -> float:
    """The temperature ``T`` (between ``lo`` and ``hi``) that minimises ``cross_entropy(logits / T, targets)``.

    With ``s = 1 / T`` the loss is convex in ``s``, and its slope is ``mean(E_p[logit] - logit_true)``:
    the score the model expects minus the true class's score. That slope grows with ``s``, so its
    zero is found by bisection (on ``log s``, 60 halvings: far below any precision that matters).
    """
    logits, targets = logits.double(), targets.long()

    def slope(s: float) -> float:
        p = (logits * s).softmax(1)
        return float(((p * logits).sum(1) - logits.gather(1, targets[:, None])[:, 0]).mean())

    log_lo, log_hi = -math.log(hi), -math.log(lo)  # bounds on log s
    if slope(math.exp(log_hi)) <= 0:  # still too unsure at the coolest temperature allowed
        return lo
    if slope(math.exp(log_lo)) >= 0:
        return hi
    for _ in range(60):
        mid = (log_lo + log_hi) / 2
        log_lo, log_hi = (mid, log_hi) if slope(math.exp(mid)) < 0 else (log_lo, mid)
    return math.exp(-(log_lo + log_hi) / 2)


def lda_temperature(features: Tensor, targets: Tensor, n_classes: int, shrinkage: float = 0.9,
                    folds: int = 5) -> float:
    """The temperature for LDA's scores, from out-of-fold scores of the training photos.

    Args:
        features: (views, n, n_features): every view of photo ``i`` is in the same fold as the photo.
        targets: (n,) class indices.
        folds: each class's photos are dealt round-robin into this many folds (no randomness), and
            each fold is scored by LDA fitted on the others.
    """
    n_views, n, _ = features.shape
    fold = torch.empty(n, dtype=torch.long)
    for c in targets.unique():
        photos = (targets == c).nonzero()[:, 0]
        fold[photos] = torch.arange(len(photos)) % folds  # the class's 1st photo in fold 0, 2nd in 1 ...
    if len(fold.unique()) < 2:
        return 1.0  # too few photos to hold any out: leave the scores as they are
    logits = torch.zeros(n_views, n, n_classes)
    for k in fold.unique():
        out = fold == k
        w, b = lda_weights(features[:, ~out].flatten(0, 1), targets[~out].repeat(n_views), n_classes, shrinkage)
        logits[:, out] = features[:, out] @ w.T + b
    logits = logits.flatten(0, 1)
    temperature = fit_temperature(logits, targets.repeat(n_views))
    # Where the held-out photos are all easy (toy data), the best temperature is "as cool as
    # allowed". Keep every photo's scores within MAX_SPREAD of each other all the same: past that,
    # softmax is exactly 0 or 1 even in float32 (float16 overflows sooner), and training learns nothing.
    spread = float((logits.max(1).values - logits.min(1).values).max())
    return max(temperature, spread / MAX_SPREAD)


def init_head_lda(head: nn.Sequential, features: Tensor, targets: Tensor, shrinkage: float = 0.9,
                  calibrate: bool = True) -> float:
    """Set ``head`` (``models.create_head``: concat pool, BatchNorm, dropout, linear) so that, in eval
    mode, it computes the shrinkage-LDA scores of the *average-pooled* features, divided by the
    temperature from ``lda_temperature`` (1 without ``calibrate``). Returns that temperature.

    ``features`` are the pooling layer's outputs, (views, n, 2 * n_features) or (n, 2 * n_features):
    average then max pooling, as ``features.compute_features`` stores them. The BatchNorm layer gets
    their mean and variance as its statistics (and no scaling), and the linear layer the LDA
    weights undone by that standardization; the max-pooled half starts at zero weight, for the
    training that follows to use as it sees fit.
    """
    bn, linear = head[1], head[-1]
    if not (isinstance(bn, nn.BatchNorm1d) and isinstance(linear, nn.Linear)):
        raise TypeError("init_head_lda expects models.create_head's layers: pool, BatchNorm1d, Dropout, Linear")
    n_in, n_classes = linear.in_features, linear.out_features
    if features.ndim == 2:
        features = features[None]  # one view
    if features.ndim != 3 or features.shape[2] != n_in or features.shape[1] != len(targets):
        raise ValueError(f"features of shape (views, n, {n_in}) or (n, {n_in}) expected (the head's pooled "
                         f"inputs, n = {len(targets)} targets), got {tuple(features.shape)}")
    n_avg = n_in // 2  # concat pooling: the first half is the average
    averages = features[..., :n_avg]
    temperature = lda_temperature(averages, targets, n_classes, shrinkage) if calibrate else 1.0
    w, b = lda_weights(averages.flatten(0, 1), targets.repeat(len(features)), n_classes, shrinkage)
    w, b = w / temperature, b / temperature
    features = features.flatten(0, 1)  # (views * n, n_in)
    with torch.no_grad():
        mean, var = features.mean(0), features.var(0, unbiased=False)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        std = (var + bn.eps).sqrt()  # BatchNorm divides by this; the weights multiply it back
        weight = torch.zeros(linear.weight.shape)  # built on the CPU, copied to the head's device
        weight[:, :n_avg] = w * std[:n_avg]
        linear.weight.copy_(weight)
        linear.bias.copy_(b + w @ mean[:n_avg])
    return temperature
