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

from ._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the module that defines it (relative to engine/)
_EXPORTS = {
    "losses": [
        "where_loss", "softmax", "logsumexp", "log_softmax", "nll_loss", "cross_entropy", "sigmoid",
        "binary_cross_entropy_with_logits",
    ],
    "numerics": ["NonFiniteError", "check_finite", "log_of", "naive_softmax", "compare_softmax"],
    "metrics": ["accuracy", "error_rate"],
    "models": ["create_model", "create_head", "Classifier", "ARCHS", "imagenet_categories"],
    "datasets": ["PET_BREEDS", "is_cat", "pets_path", "pets_sample", "download_pets", "default_cache_dir"],
    "data.download": ["download_file", "safe_extract", "UnsafeArchiveError"],
    "data.pets": ["open_data", "read_full_layout", "build_sample", "PetsData"],
    "data.items": [
        "PETS_PATTERN", "get_image_files", "RegexLabeller", "parent_label", "label_items", "read_table",
        "random_split", "column_split", "official_split", "verify_images",
    ],
    "data.transforms": ["load_image", "load_array", "to_rgb", "Presize"],
    "data.augment": ["BatchAugment", "AugmentParams"],
    "data.loaders": ["DataLoaders", "ImageDataset", "CollateError", "default_device"],
    "data.preprocessing": ["Preprocessing"],
    "data.show": ["show_batch", "show_images"],
    "data.summary": ["summary"],
    "data.quality": ["compare_presizing", "psnr"],
    "learning.schedules": ["one_cycle_lr", "one_cycle_mom", "lr_for_groups", "cos_anneal"],
    "learning.callbacks": [
        "Callback", "CancelFitException", "CancelEpochException", "CancelBatchException", "Recorder",
        "ProgressCallback", "NanGuard", "LastGoodState", "ParamScheduler", "MixedPrecision", "EarlyStopping",
        "SaveBestModel", "Order",
    ],
    "learning.learner": ["Learner"],
    "learning.fine_tune": ["VisionLearner", "vision_learner", "head_learner", "fit_head_on_features"],
    "learning.lr_finder": ["lr_find", "LRFindResult"],
    "learning.features": ["compute_features", "cached_preds"],
    "learning.head_init": ["lda_weights", "fit_temperature", "lda_temperature", "init_head_lda"],
    "learning.plots": ["plot_loss", "plot_sched", "plot_lr_find"],
    "learning.interpret": ["ClassificationInterpretation"],
    "learning.distributed": ["setup_distributed", "DistributedTrainer"],
    "serving.export": ["export", "read_export", "PickleRefused"],
    "serving.predictor": ["Predictor", "load_predictor"],
    "serving.fold": ["fold_batchnorm"],
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
