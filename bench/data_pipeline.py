"""Benchmark: images/s of one training epoch of the presizing pipeline, beside two baselines.

    python bench/data_pipeline.py [--workers 0 2] [--epochs 3]

All three read the same photos ($PETS_SAMPLE/images, all 370) with batch size 32 on the CPU and
the same number of DataLoader worker processes:
  decode      the ceiling: open + decode each file, nothing else
  torchvision per-image RandomResizedCrop(224) + flip + RandomRotation(10) on full-size PIL images,
              then to a normalized float tensor (default collate)
  pipeline    this engine: CPU presize to 460 (one resample), batched on the device: flip, rotate,
              zoom, warp, random-resized crop and resize to 224 in one grid_sample, lighting,
              normalization
Each figure is the best of ``--epochs`` epochs (the first one warms caches and workers). By
default it runs with 0 workers (everything in one process) and with one worker per CPU.
The quality side (empty pixels, PSNR against a high-quality reference) is measured on every
photo with engine.data.quality.
The last line is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.data import DataLoaders  # noqa: E402
from engine.data.items import get_image_files, random_split  # noqa: E402
from engine.data.locate import pets_sample  # noqa: E402


class DecodeOnly(Dataset):
    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        img = Image.open(self.files[i]).convert("RGB")
        return img.size[0]


class TorchvisionPipeline(Dataset):
    def __init__(self, files):
        from torchvision.transforms import v2

        self.files = files
        self.tfm = v2.Compose([
            v2.RandomResizedCrop(224, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ])

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        return self.tfm(Image.open(self.files[i]).convert("RGB")), 0


def images_per_second(loader, epochs: int) -> float:
    best = 0.0
    for _ in range(epochs):
        start, n = time.perf_counter(), 0
        for batch in loader:
            n += len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)
        best = max(best, n / (time.perf_counter() - start))
    return best


def measure(files, workers: int, epochs: int, bs: int) -> dict:
    """images/s of the three pipelines with ``workers`` DataLoader processes each."""
    threads = torch.get_num_threads()
    if workers > 0:
        # The workers already keep every core busy with the per-image work; the main process's
        # batch step then runs on one thread so that it does not fight them for the same cores.
        torch.set_num_threads(1)
    kw = dict(batch_size=bs, num_workers=workers, persistent_workers=workers > 0)
    decode = images_per_second(DataLoader(DecodeOnly(files), **kw), epochs)
    tv = images_per_second(DataLoader(TorchvisionPipeline(files), shuffle=True, **kw), epochs)
    labels = [p.name.rsplit("_", 1)[0] for p in files]
    every_file = (list(range(len(files))), random_split(len(files), 0.2, 0)[1])  # train on all of them
    dls = DataLoaders.from_items(files, labels, every_file, presize=460, size=224, batch_size=bs,
                                 num_workers=workers, seed=0, device="cpu")
    ours = images_per_second(dls.train, epochs)
    torch.set_num_threads(threads)
    print(f"{workers} worker process(es): decode only {decode:6.1f}   torchvision {tv:6.1f}   "
          f"presizing pipeline {ours:6.1f} images/s   (x{ours / tv:.2f} torchvision, "
          f"{ours / decode:.0%} of decode)", flush=True)
    return {"pipeline_ips": round(ours, 1), "torchvision_ips": round(tv, 1), "decode_ips": round(decode, 1),
            "vs_torchvision": round(ours / tv, 3), "vs_decode": round(ours / decode, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, os.cpu_count() or 1],
                        help="DataLoader worker counts to measure (the same for all pipelines); "
                             "the headline figures are those of the last one")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--bs", type=int, default=32)
    args = parser.parse_args()

    files = get_image_files(pets_sample() / "images")
    print(f"{len(files)} photos, batch {args.bs}, {torch.get_num_threads()} torch threads, "
          f"{os.cpu_count()} CPUs", flush=True)
    runs = {w: measure(files, w, args.epochs, args.bs) for w in args.workers}

    from engine.data.quality import compare_presizing

    quality = [compare_presizing(p) for p in files]
    q = {
        "presize_empty_fraction_max": max(r["presize"]["empty_fraction"] for r in quality),
        "naive_empty_fraction_min": min(r["naive"]["empty_fraction"] for r in quality),
        "presize_psnr_db": sum(r["presize"]["psnr"] for r in quality) / len(quality),
        "naive_psnr_db": sum(r["naive"]["psnr"] for r in quality) / len(quality),
        "psnr_gain_db_min": min(r["presize"]["psnr"] - r["naive"]["psnr"] for r in quality),
    }
    print(f"quality over all {len(quality)} photos (rotate 10, zoom 1.1): empty pixels presize "
          f"{q['presize_empty_fraction_max']:.4f} (worst) vs naive {q['naive_empty_fraction_min']:.4f} (best); "
          f"PSNR presize {q['presize_psnr_db']:.1f} dB vs naive {q['naive_psnr_db']:.1f} dB (mean), "
          f"smallest gain {q['psnr_gain_db_min']:.1f} dB")
    headline = runs[args.workers[-1]]
    figures = {**headline, "workers": args.workers[-1], "images": len(files),
               "by_workers": {str(w): r for w, r in runs.items()},
               **{k: round(v, 4) for k, v in q.items()}}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
