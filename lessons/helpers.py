"""Helper code the lesson notebooks share, kept out of their cells so that each cell shows one idea.

Each notebook's helpers have their own section below, headed with its number. They are small on
purpose: in Jupyter, ``helper??`` shows the source of any of them.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections import Counter

import torch
from torch import nn

from engine.learning.callbacks import Callback, CancelFitException, gradients_finite

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


# --- notebooks 06 and 07 ---


def head_learner(frozen, start, seed: int = 0, batch_size: int = 32):
    """A learner for a copy of the head ``start`` on the features ``frozen.cache`` (a ``FrozenPhase``).

    The same ``seed`` gives the same batch order and the same dropout, so two runs stay identical until
    something (a callback, a setting) makes them differ.
    """
    from engine.learning.features import FeatureLoaders
    from engine.learning.learner import Learner

    torch.manual_seed(seed)  # dropout draws from torch's global random generator
    dls = frozen.head.dls
    loaders = FeatureLoaders(frozen.cache, batch_size, dls.device, dls.vocab, seed=seed, drop_last=True)
    return Learner(loaders, copy.deepcopy(start), progress=False)


def confidence(learn) -> dict:
    """How many validation photos ``learn`` gets wrong, how sure it is of its answers (the mean top
    probability), and the mean loss of the photos it gets right and of those it gets wrong."""
    probs, targets = learn.get_preds()
    losses = -probs[torch.arange(len(targets)), targets].clamp_min(1e-12).log()
    wrong = probs.argmax(1) != targets
    return {"wrong": int(wrong.sum()), "confidence": probs.max(1).values.mean().item(),
            "loss right": losses[~wrong].mean().item(), "loss wrong": losses[wrong].mean().item()}


def full_against_early(frozen, seeds, n_epochs: int, lr_max: float, stopper_factory) -> list[tuple[int, int, int]]:
    """For each seed, a freshly initialised head trained with one-cycle to the end and with the early
    stopper ``stopper_factory()``: ``(seed, photos wrong after the full run, photos wrong after early stopping)``."""
    n_valid = len(frozen.cache.valid_y)
    rows = []
    for seed in seeds:
        torch.manual_seed(seed)
        start = copy.deepcopy(frozen.head.model)
        for layer in start.modules():
            if isinstance(layer, (torch.nn.Linear, torch.nn.BatchNorm1d)):
                layer.reset_parameters()  # a new random head for each seed
        wrong = []
        for cbs in ([], [stopper_factory()]):
            run = head_learner(frozen, start, seed)
            run.fit_one_cycle(n_epochs, lr_max, cbs=cbs)
            wrong.append(round(run.recorder.epochs[-1]["error_rate"] * n_valid))
        rows.append((seed, *wrong))
    return rows


def cross_validation_folds(frozen, n_folds: int = 5, seed: int = 0):
    """Copies of ``frozen`` (a ``FrozenPhase`` with one view) whose caches take turns at holding out a
    fold of the photos, so that every photo is validated once: fold 0 is ``frozen``'s own validation
    set; the training photos of each label are shuffled (with ``seed``) and dealt out over the other
    folds, so each fold holds about as many photos of each label as the validation set does."""
    from engine.learning.features import FeatureCache

    cache = frozen.cache
    if cache.n_views != 1:
        raise ValueError("cross_validation_folds needs the features of one view (FrozenPhase(learn, views=1)): "
                         "the validation photos have no augmented views to train on")
    feats, labels = torch.cat([cache.train[0], cache.valid]), torch.cat([cache.train_y, cache.valid_y])
    fold = torch.zeros(len(labels), dtype=torch.long)  # the validation photos (at the end) stay in fold 0
    gen = torch.Generator().manual_seed(seed)
    for label in cache.train_y.unique():
        mine = (cache.train_y == label).nonzero().flatten()
        fold[mine[torch.randperm(len(mine), generator=gen)]] = 1 + torch.arange(len(mine)) % (n_folds - 1)
    for k in range(n_folds):
        phase = copy.copy(frozen)
        phase.cache = FeatureCache(feats[fold != k][None], labels[fold != k], feats[fold == k], labels[fold == k])
        yield phase


@contextlib.contextmanager
def one_thread():
    """Run the block on one CPU thread, then go back to as many as before. A head as small as ours
    trains faster on one thread than on several, whose threads spend longer waiting for each other (much
    longer on a busy machine) than computing. Its numbers need not be bit for bit the same as on several
    threads (sums can be split differently); in notebook 06's cross-validation on our machine, one thread
    and two gave the same totals."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def smoothed(values: list[float], window: int) -> list[float]:
    """The mean of each ``window`` values in a row, ending at each position (``nan`` where fewer came before)."""
    return [sum(values[i + 1 - window:i + 1]) / window if i + 1 >= window else float("nan")
            for i in range(len(values))]



def backward_memory(learn, xb, yb) -> dict:
    """The bytes one forward pass (and the loss) of ``learn`` keeps for the backward pass, measured.

    On a GPU: ``{"total": ...}``, the peak of ``torch.cuda.max_memory_allocated`` during the forward
    pass, above what was allocated before it. On a CPU: the bytes of the tensors autograd saves for the
    backward pass, caught with ``torch.autograd.graph.saved_tensors_hooks`` (each storage counted once,
    the float32 weights left out since they are kept anyway): ``{"total": ..., "weight copies": ...}``,
    where "weight copies" are the 16-bit copies of the weights that autocast makes and keeps.
    """
    model = learn.model.train()
    if xb.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with learn.autocast():
            loss = learn.loss_func(model(xb), yb)
        torch.cuda.synchronize()
        used = torch.cuda.max_memory_allocated() - before
        del loss
        return {"total": used}
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    shapes = {tuple(p.shape) for p in model.parameters() if p.dim() > 1}
    saved, copies = {}, {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            saved[ptr] = t.untyped_storage().nbytes()
            if t.dtype != torch.float32 and tuple(t.shape) in shapes:
                copies[ptr] = saved[ptr]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), learn.autocast():
        learn.loss_func(model(xb), yb)
    return {"total": sum(saved.values()), "weight copies": sum(copies.values())}


def describe_resnet(arch: str) -> dict:
    """Count what a ResNet of the registry is made of (random weights: no download): layers with weights
    along the main path, convolutions, bottleneck blocks (in all and per stage), parameters, the body's
    GFLOPs on one 224x224 image, and the number of features it hands to the head."""
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    from engine.models import create_model

    bottleneck = torchvision.models.resnet.Bottleneck
    model = create_model(arch, n_classes=37, pretrained=False).eval()
    convs = {name: m for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    main_path = [n for n in convs if "downsample" not in n]  # the shortcut's 1x1 convolutions are not counted
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    blocks = [m for m in model.modules() if isinstance(m, bottleneck)]
    # A stage is a run of bottleneck blocks (torchvision's layer1 ... layer4), in order.
    stages = [len(s) for s in model.modules()
              if isinstance(s, nn.Sequential) and len(s) and all(isinstance(b, bottleneck) for b in s)]
    with FlopCounterMode(display=False) as flops, torch.no_grad():
        features = model.body(torch.randn(1, 3, 224, 224))
    return {"layers": len(main_path) + len(linears), "convolutions": len(convs), "blocks": len(blocks),
            "blocks per stage": stages, "parameters": sum(p.numel() for p in model.parameters()),
            "GFLOPs": flops.get_total_flops() / 1e9, "features": features.shape[1]}


class DtypeProbe(Callback):
    """Record dtypes inside and around the forward pass of the first training batch, then stop the fit:
    ``layers`` counts (layer type, output dtype); ``preds``, ``loss``, ``weights``, ``grads``, ``scaler``."""

    def before_fit(self, learn):
        self.layers = Counter()
        self.hooks = [m.register_forward_hook(self.hook) for m in learn.model.modules()
                      if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear))]

    def hook(self, module, inputs, output):
        self.layers[type(module).__name__, str(output.dtype).replace("torch.", "")] += 1

    def after_pred(self, learn):
        self.preds = learn.preds.dtype

    def after_loss(self, learn):
        self.loss = learn.loss.dtype

    def after_backward(self, learn):
        self.weights = {p.dtype for p in learn.model.parameters()}
        self.grads = {p.grad.dtype for p in learn.model.parameters() if p.grad is not None}
        self.scaler = learn.scaler

    def after_batch(self, learn):
        raise CancelFitException()  # one training batch is all we need

    def cleanup_fit(self, learn):
        for h in self.hooks:
            h.remove()


def probe(learn) -> DtypeProbe:
    """Run one training batch of ``learn`` with a ``DtypeProbe`` and return the probe."""
    p = DtypeProbe()
    learn.fit(1, lr=1e-3, cbs=[p])
    return p


def scaler_words(scaler) -> str:
    """A gradient scaler in a few words: its type and current scale, or None."""
    return "None" if scaler is None else f"{type(scaler).__name__}, scale {scaler.get_scale():,.0f}"


class ScalerWatch(Callback):
    """The gradient scaler over the first training steps: the scale before and after each step and
    whether the weights changed. After the first backward pass it makes one gradient infinite."""

    def __init__(self, n_steps=3):
        self.n_steps, self.steps = n_steps, []

    def after_backward(self, learn):
        if learn.iter == 0:
            learn.opt.param_groups[-1]["params"][-1].grad[0] = float("inf")  # the head's last bias
        self.finite = gradients_finite(learn)
        self.scale = learn.scaler.get_scale()
        self.weights = [p.detach().clone() for p in learn.model.parameters()]

    def after_step(self, learn):
        changed = any(not torch.equal(w, p) for w, p in zip(self.weights, learn.model.parameters()))
        self.steps.append({"step": learn.iter + 1, "finite": self.finite, "scale before": self.scale,
                           "scale after": learn.scaler.get_scale(), "weights changed": changed})
        if len(self.steps) == self.n_steps:
            raise CancelFitException()


def sync(device) -> None:
    """Wait for the GPU: its work runs asynchronously, and a timer must not stop before it is done."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class StepTimer(Callback):
    """Seconds per training step, from the start of the batch to the end of the optimizer step;
    stops the fit after ``n_steps``."""

    def __init__(self, n_steps):
        self.n_steps, self.times = n_steps, []

    def before_batch(self, learn):
        sync(learn.dls.device)
        self.start = time.perf_counter()

    def after_step(self, learn):
        sync(learn.dls.device)
        self.times.append(time.perf_counter() - self.start)
        if len(self.times) == self.n_steps:
            raise CancelFitException()


def seconds_per_step(learn, n_steps: int = 3) -> float:
    """The median seconds of ``n_steps`` training steps of ``learn``, after one warm-up step (the first
    step in a mode includes one-time setup)."""
    learn.fit(1, lr=1e-3, cbs=[StepTimer(1)])
    timer = StepTimer(n_steps)
    learn.fit(1, lr=1e-3, cbs=[timer])
    return statistics.median(timer.times)


def body_seconds(learn, xb, modes: dict, rounds: int = 3) -> dict:
    """The median seconds the body of ``learn`` takes over the batch ``xb`` in each mode; ``modes`` maps
    a name to a context-manager factory (e.g. ``contextlib.nullcontext``, or an autocast). The modes take
    turns, round after round, so that a machine busy with something else slows them alike."""
    body, times = learn.unwrapped.body.eval(), {name: [] for name in modes}
    with torch.no_grad():
        for _ in range(rounds + 1):  # the first round warms up
            for name, mode in modes.items():
                sync(xb.device)
                start = time.perf_counter()
                with mode():
                    body(xb)
                sync(xb.device)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t[1:]) for name, t in times.items()}


# --- notebook 05 ---


def moved(learn, lr, batches) -> list[float]:
    """How far each parameter group of ``learn`` moves, relative to its size (the norm of the change over
    the norm of the weights), when the optimizer takes one step per batch of ``batches`` at the rate ``lr``
    (a number for every group, or a slice spread over them).

    A trial that leaves no trace: ``learn.restoring()`` puts the weights and the optimizer back afterwards,
    every module goes back to the train or eval mode it was in, and torch's random generator is seeded
    inside ``torch.random.fork_rng()``, so two calls see the same dropout and the caller's random stream
    goes on as if nothing had run.
    """
    modes = [(m, m.training) for m in learn.model.modules()]
    with learn.restoring(), torch.random.fork_rng():
        try:
            torch.manual_seed(0)
            learn.set_lr(lr)
            groups = learn.param_groups()
            start = [[p.detach().clone() for p in group] for group in groups]
            learn.model.train()
            for xb, yb in batches:
                learn.loss_func(learn.model(xb).float(), yb).backward()  # the loss in float32, as the learner does
                learn.opt.step()
                learn.opt.zero_grad(set_to_none=True)
            return [(sum(((p.detach() - p0) ** 2).sum().item() for p, p0 in zip(group, group0))
                     / sum((p0 ** 2).sum().item() for p0 in group0)) ** 0.5 for group, group0 in zip(groups, start)]
        finally:
            for m, training in modes:
                m.training = training
