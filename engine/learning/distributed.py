"""Training on several processes at once with DistributedDataParallel (DDP).

``torchrun --nproc_per_node=N script.py`` starts N copies of the script; each gets its rank from
the environment. Each process holds a full replica of the model and sees a different shard of every
epoch's training batches (a ``DistributedSampler``). After ``backward`` DDP averages the gradients
across processes (an all-reduce), so every replica takes the same optimizer step and the replicas
stay identical; BatchNorm statistics are broadcast from rank 0 at each forward pass.

Use: ``setup_distributed()`` once at start, then ``learn.add_cb(DistributedTrainer())``.
Gloo is the backend on CPUs, NCCL on GPUs.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from .callbacks import Callback, Order

__all__ = ["setup_distributed", "is_distributed", "rank", "world_size", "DistributedTrainer"]


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def setup_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group that torchrun describes in the environment; return (rank, world size).

    Without torchrun (no ``WORLD_SIZE`` > 1) this does nothing and returns (0, 1).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or is_distributed():
        return rank(), world_size()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)
    return rank(), world_size()


class DistributedTrainer(Callback):
    """Wrap the model in DDP and shard the training batches across processes for the fit."""

    order = Order.SETUP  # before anything looks at the model or the data

    def before_fit(self, learn):
        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data.distributed import DistributedSampler

        if not is_distributed():
            raise RuntimeError("DistributedTrainer needs a process group: call setup_distributed() under torchrun")
        device_ids = [learn.dls.device.index or 0] if learn.dls.device.type == "cuda" else None
        learn.model = DDP(learn.model, device_ids=device_ids)
        self.sampler = DistributedSampler(learn.dls.train.dataset, num_replicas=world_size(), rank=rank(),
                                          shuffle=True, seed=learn.dls.seed or 0, drop_last=True)
        self._original_train = learn.dls.train
        learn.dls.with_train_sampler(self.sampler)

    def before_epoch(self, learn):
        if learn.training:
            self.sampler.set_epoch(learn.epoch)  # a different shuffle every epoch, the same on every rank

    def cleanup_fit(self, learn):
        if isinstance(learn.model, torch.nn.parallel.DistributedDataParallel):
            learn.model = learn.model.module
        learn.dls.train = self._original_train
