"""petbreeds engine: a small, readable PyTorch library for the pet-breeds lesson.

Read it in this order: the lesson's core, then the layers it rests on and the ones built on it.

The core, at the top (what the chapter teaches):
    losses        softmax, log_softmax (via logsumexp), nll_loss, cross_entropy, ... from scratch
    numerics      the log domain, and the NaN guard's error
    metrics       accuracy, error_rate
    models        the architecture registry: pretrained bodies with a new head, parameter groups
    cam           where the model looked: class-activation maps, exact for the head we have

data/  from photo files to augmented batches on the device
    preprocessing the whole preprocessing as one frozen object (presize, size, normalization)
    items         files, labels (regex, folder, table), splits, bad-file checks
    transforms    CPU item transforms: open, RGB, presize
    augment       batch augmentation on the device: one composed grid_sample
    loaders       ImageDataset, DataLoaders
    show, summary, quality    looking at a batch, debugging a pipeline, presizing measured
    breeds, pets, download, files    the Oxford-IIIT Pet dataset: names, layouts, fetching it
    locate        where the photos are: pets_path, pets_sample

learning/  training on top of the data
    learner       the training loop (fit, fit_one_cycle, freeze/unfreeze, to_fp16, lr_find)
    callbacks     recorder, progress, NaN guard, last good state, schedules, mixed precision, ...
    schedules     one-cycle and friends as pure functions; slice -> per-group rates
    lr_finder     the learning-rate finder and its suggestions
    features      the frozen body's features, cached
    head_init     the head from the class averages (shrinkage LDA), in closed form
    frozen_phase  FrozenPhase: the frozen phase on cached features, the head started from them (opt-in)
    fine_tune     vision_learner and fine_tune: freeze, train the head, unfreeze (the book's parameters)
    interpret, plots, distributed

serving/  a trained model, saved and answering photos
    export        safetensors + JSON + the ONNX graph, committed atomically
    exported      an export read back with checks (no pickles, bounded, checksummed)
    onnx          the graph for onnxruntime, its int8 copy, the session
    predictor     load_predictor, Predictor: a photo in, a Prediction out
    prediction    Prediction: probabilities, the ImageNet check, the pixels seen, the time
    runtime       onnxruntime when its check against PyTorch passes, else PyTorch
    fold          BatchNorm folded into the convolutions

learning/ and serving/ sit beside each other and never import each other (tests/test_package.py
checks the layer order). Below both:

recipe        the training recipe: Recipe (the choices), TrainingRun (the steps), run_recipe
memory        glibc's malloc kept from handing every large block back (``import engine`` does it)

Commands and helpers: ``datasets`` (``python -m engine.datasets``: download the photos, pick the
sample, say where they are), ``train`` (``python -m engine.train``), ``predict``
(``python -m engine.predict``: a folder of photos to a CSV), ``progress`` (progress bars, with the
core), ``testing`` (generated photos for tests and benchmarks).

Names are re-exported here by name (``from engine import cross_entropy``) but each module is only
imported when one of its names is first used, so ``import engine`` is instant: torch and friends
load when they are needed.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from .memory import keep_freed_memory

__version__ = "0.1.0"

keep_freed_memory()  # on Linux a training run spent most of its time in page faults: see memory.py

# public name -> the module that defines it (relative to engine/)
_EXPORTS = {
    "losses": [
        "where_loss", "softmax", "logsumexp", "log_softmax", "nll_loss", "cross_entropy", "sigmoid",
        "binary_cross_entropy_with_logits",
    ],
    "numerics": ["NonFiniteError", "check_finite", "log_of", "naive_softmax", "compare_softmax"],
    "metrics": ["accuracy", "error_rate"],
    "models": ["create_model", "create_head", "Classifier", "ARCHS", "register", "imagenet_categories"],
    "cam": ["activation_maps", "where_looked"],
    "datasets": ["download_pets"],
    "data.breeds": ["PET_BREEDS", "is_cat"],
    "data.locate": ["pets_path", "pets_sample", "default_cache_dir"],
    "data.download": ["download_file", "safe_extract", "UnsafeArchiveError"],
    "data.pets": ["open_data", "read_full_layout", "build_sample", "PetsData"],
    "data.items": [
        "PETS_PATTERN", "get_image_files", "RegexLabeller", "parent_label", "label_items", "read_table",
        "random_split", "column_split", "official_split", "verify_images",
    ],
    "data.transforms": ["load_image", "load_array", "to_rgb", "Presize"],
    "data.augment": ["BatchAugment", "AugmentOptions", "AugmentParams"],
    "data.loaders": ["DataLoaders", "LoaderOptions", "ImageDataset", "CollateError", "default_device"],
    "data.preprocessing": ["Preprocessing"],
    "data.show": ["show_batch", "show_images"],
    "data.summary": ["summary"],
    "data.quality": ["compare_presizing", "presizing_ablation", "psnr"],
    "learning.schedules": ["one_cycle_lr", "one_cycle_mom", "lr_for_groups", "cos_anneal"],
    "learning.callbacks": [
        "Callback", "CancelFitException", "CancelEpochException", "CancelBatchException", "Recorder",
        "ProgressCallback", "NanGuard", "LastGoodState", "ParamScheduler", "MixedPrecision", "EarlyStopping",
        "SaveBestModel", "Order",
    ],
    "learning.learner": ["Learner"],
    "learning.fine_tune": ["VisionLearner", "vision_learner"],
    "learning.frozen_phase": ["FrozenPhase"],
    "recipe": ["Recipe", "TrainingRun", "TrainingResult", "run_recipe", "forget_features"],
    "learning.lr_finder": ["lr_find", "LRFindResult"],
    "learning.features": ["compute_features", "cached_preds"],
    "learning.head_init": ["lda_weights", "fit_temperature", "lda_temperature", "init_head_lda"],
    "learning.plots": ["plot_loss", "plot_sched", "plot_lr_find"],
    "learning.interpret": ["ClassificationInterpretation"],
    "learning.distributed": ["setup_distributed", "DistributedTrainer"],
    "serving.export": ["export"],
    "serving.exported": ["read_export", "PickleRefused"],
    "serving.predictor": ["Predictor", "load_predictor"],
    "serving.prediction": ["Prediction"],
    "serving.fold": ["fold_batchnorm"],
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
