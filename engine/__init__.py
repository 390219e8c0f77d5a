"""petbreeds engine: a small, readable PyTorch library for the pet-breeds lesson.

Modules, in the order the lesson meets them:

    datasets    where the photos are; downloading the full dataset; the lessons' sample
    pets        the full download's layout (official split), any --data, picking the sample
    items       files, labels (regex, folder, table), splits, bad-file checks
    transforms  CPU item transforms: open, RGB, presize
    augment     batch augmentation on the device: one composed grid_sample
    data        Dataset, DataLoaders
    show        show_batch
    summary     step-by-step pipeline debugging
    quality     presizing vs. the naive order, measured
    losses      softmax, log_softmax, nll_loss, cross_entropy, ... from scratch
    numerics    the log domain, and the NaN guard
    models      pretrained bodies with a new head, parameter groups
    learner     the training loop, fit_one_cycle, freeze/unfreeze, fine_tune, to_fp16
    callbacks   recorder, progress, NaN guard, schedules, mixed precision, early stopping
    schedules   one-cycle and friends as pure functions; slice -> per-group rates
    lr_finder   the learning-rate finder and its suggestions
    features    the frozen-phase speed-up: train the head on cached body features
    head_init   start the head from the class averages (shrinkage LDA), in closed form
    plots       loss, schedule and LR-finder plots
    interpret   confusion matrix, most confused, top losses
    export      safetensors + JSON export; predict: loading it and predicting
    distributed DistributedDataParallel under torchrun
    progress    progress bars: live in a terminal or notebook, a few lines in a log
    train       ``python -m engine.train``: the command-line recipe

Names are re-exported here by name (``from engine import cross_entropy``) but each module is only
imported when one of its names is first used, so ``import engine`` is instant: torch and friends
load when they are needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "losses": [
        "where_loss", "softmax", "logsumexp", "log_softmax", "nll_loss", "cross_entropy", "sigmoid",
        "binary_cross_entropy_with_logits",
    ],
    "numerics": ["NonFiniteError", "check_finite", "log_of", "naive_softmax", "compare_softmax"],
    "datasets": ["PET_BREEDS", "is_cat", "pets_path", "pets_sample", "download_pets", "default_cache_dir"],
    "pets": ["open_data", "read_full_layout", "build_sample", "PetsData"],
    "download": ["download_file", "safe_extract", "UnsafeArchiveError"],
    "items": [
        "PETS_PATTERN", "get_image_files", "RegexLabeller", "parent_label", "label_items", "read_table",
        "random_split", "column_split", "official_split", "verify_images",
    ],
    "transforms": ["load_image", "load_array", "to_rgb", "Presize"],
    "augment": ["BatchAugment", "AugmentParams"],
    "data": ["DataLoaders", "ImageDataset", "CollateError", "default_device"],
    "show": ["show_batch", "show_images"],
    "summary": ["summary"],
    "quality": ["compare_presizing", "psnr"],
    "models": ["create_model", "create_head", "Classifier", "ARCHS", "imagenet_categories"],
    "schedules": ["one_cycle_lr", "one_cycle_mom", "lr_for_groups", "cos_anneal"],
    "callbacks": [
        "Callback", "CancelFitException", "CancelEpochException", "CancelBatchException", "Recorder",
        "ProgressCallback", "NanGuard", "ParamScheduler", "MixedPrecision", "EarlyStopping", "SaveBestModel",
    ],
    "metrics": ["accuracy", "error_rate"],
    "learner": ["Learner", "vision_learner"],
    "lr_finder": ["lr_find", "LRFindResult"],
    "features": ["compute_features", "head_learner", "fit_head_on_features", "cached_preds"],
    "head_init": ["lda_weights", "fit_temperature", "lda_temperature", "init_head_lda"],
    "plots": ["plot_loss", "plot_sched", "plot_lr_find"],
    "interpret": ["ClassificationInterpretation"],
    "export": ["export", "read_export", "PickleRefused"],
    "predict": ["Predictor", "load_predictor", "fold_batchnorm"],
    "distributed": ["setup_distributed", "DistributedTrainer"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    """Import the defining module on first use of one of its names (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
