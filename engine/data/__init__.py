"""The data layer: from photo files to augmented, normalized batches on the device.

    items       files, labels (regex, folder, table), splits, bad-file checks
    transforms  CPU item transforms: open, RGB, presize
    augment     batch augmentation on the device: one composed grid_sample
    loaders     ImageDataset and DataLoaders (``from engine.data import DataLoaders``)
    show        show_batch
    summary     step-by-step pipeline debugging
    quality     presizing against the naive order, measured
    breeds      the 37 breeds; cats and dogs by the first letter
    pets        the Oxford-IIIT Pet layouts (the full download, the sample), any --data
    download    resumable, checksum-verified downloads and safe archive extraction
    locate      where the photos are: pets_path, pets_sample (``python -m engine.datasets`` gets them)
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "loaders": ["DataLoaders", "LoaderOptions", "ImageDataset", "CollateError", "DeviceLoader", "collate",
                "default_device"],
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
