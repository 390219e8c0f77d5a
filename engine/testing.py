"""Synthetic pet photos, so that every test runs anywhere, without the real dataset.

Real photos come in awkward varieties: grayscale, palette and CMYK JPEGs, PNGs with alpha or 16-bit
depth saved under a ``.jpg`` name, phone pictures stored sideways with an EXIF Orientation tag, and
extreme sizes. ``make_image`` draws a small picture in each of these ``SYNTHETIC_KINDS``, and
``write_synthetic_pets`` lays out a folder named exactly like the Oxford-IIIT Pet ``images/``
(``Abyssinian_1.jpg``, ``great_pyrenees_2.jpg``) where each breed has its own colour, so a small
model can learn the breeds and a pipeline can be tested end to end in seconds.

The pictures have structure (stripes, a blob, a box, mild noise) rather than a flat fill, so that
resizing, cropping and rotating change them measurably. Only PIL and numpy are used: no torch.
"""

from __future__ import annotations

import colorsys
import csv
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .data.breeds import PET_BREEDS, is_cat

__all__ = [
    "SYNTHETIC_KINDS",
    "make_image",
    "write_image",
    "breed_color",
    "write_synthetic_pets",
    "write_labels_csv",
    "list_line",
    "write_official_lists",
    "AWKWARD_FILES",
    "write_awkward_files",
    "write_full_layout",
]

SYNTHETIC_KINDS = ("rgb", "l", "p", "rgba", "cmyk", "i16", "exif_rotated", "tiny", "wide")

_ORIENTATION = 0x0112  # the EXIF tag number of Orientation
_FIXED_SIZES = {"tiny": (1, 1), "wide": (1000, 20)}
_JPEG_MODES = ("RGB", "L", "CMYK")
_FILE_NAME = re.compile(r"^(.+)_(\d+)\.jpg$")  # Abyssinian_12.jpg -> ("Abyssinian", "12")


def _picture(size: tuple[int, int], color: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    """An RGB picture in ``color``: stripes, a blob and a box placed by ``rng``, plus mild noise."""
    w, h = size
    light = tuple((c + 255) // 2 for c in color)
    dark = tuple(c // 2 for c in color)
    img = Image.new("RGB", size, color)
    if min(w, h) < 4:  # a picture of a few pixels stays a plain colour
        return _noisy(img, rng)
    draw = ImageDraw.Draw(img)
    for _ in range(2):  # horizontal stripes
        y = int(rng.integers(0, h))
        draw.rectangle([0, y, w - 1, y + max(h // 12, 1) - 1], fill=light)
    # An off-centre blob and box make the picture asymmetric, so a rotation or flip is visible.
    cx, cy = rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h
    rx, ry = rng.uniform(0.10, 0.25) * w, rng.uniform(0.10, 0.25) * h
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=dark)
    x0, y0 = int(rng.integers(0, max(w // 2, 1))), int(rng.integers(0, max(h // 2, 1)))
    draw.rectangle([x0, y0, x0 + w // 6, y0 + h // 6], outline=light, width=max(min(w, h) // 40, 1))
    return _noisy(img, rng)


def _noisy(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    pixels = np.asarray(img, dtype=np.float32) + rng.normal(0, 6, (img.height, img.width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))  # (h, w, 3)


def make_image(kind: str = "rgb", size: tuple[int, int] = (160, 120),
               color: tuple[int, int, int] = (200, 80, 40), seed: int = 0) -> Image.Image:
    """A synthetic picture of one of ``SYNTHETIC_KINDS``; ``size`` is (width, height) when upright.

    Kinds: ``rgb``, ``l`` (grayscale), ``p`` (palette), ``rgba`` (alpha fading left to right),
    ``cmyk``, ``i16`` (mode ``I;16``, values stretched to span 0..65535), ``tiny`` (1x1; ``size``
    ignored), ``wide`` (1000x20; ``size`` ignored), and ``exif_rotated``: the ``rgb`` picture stored
    turned 90 degrees counter-clockwise (so its pixels are ``height x width``) with EXIF Orientation
    6, so that ``ImageOps.exif_transpose`` gives back exactly the upright ``rgb`` picture.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"make_image: unknown kind {kind!r}; expected one of {SYNTHETIC_KINDS}")
    size = _FIXED_SIZES.get(kind, size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"make_image: size must be (width, height) with both >= 1, got {size!r}")
    rgb = _picture((int(size[0]), int(size[1])), tuple(color), np.random.default_rng(seed))
    if kind in ("rgb", "tiny", "wide"):
        return rgb
    if kind == "l":
        return rgb.convert("L")
    if kind == "p":
        return rgb.quantize(colors=64)
    if kind == "cmyk":
        return rgb.convert("CMYK")
    if kind == "rgba":
        alpha = np.linspace(32, 255, rgb.width).round().astype(np.uint8)  # (w,)
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(np.tile(alpha, (rgb.height, 1))))
        return rgba
    if kind == "i16":
        gray = np.asarray(rgb.convert("L"), dtype=np.float64)
        span = max(gray.max() - gray.min(), 1.0)
        return Image.fromarray(((gray - gray.min()) / span * 65535).round().astype(np.uint16))
    # exif_rotated: Orientation 6 means "turn 90 degrees clockwise to view", so store it turned back.
    stored = rgb.transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[_ORIENTATION] = 6
    stored.info["exif"] = exif.tobytes()
    return stored


def write_image(path: str | os.PathLike, kind: str = "rgb", **kwargs) -> Path:
    """Save ``make_image(kind, **kwargs)`` to ``path``: JPEG where the mode allows it, else PNG.

    The format does not follow the file name: like a few files of the real dataset, a ``.jpg``
    name may hold a PNG (palette, alpha, 16-bit, and the 1x1 ``tiny`` picture).
    """
    path = Path(path)
    img = make_image(kind, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    if img.mode in _JPEG_MODES and kind != "tiny":
        extra = {"exif": img.getexif()} if kind == "exif_rotated" else {}
        img.save(path, format="JPEG", quality=90, **extra)
    else:
        img.save(path, format="PNG")
    return path


def breed_color(breed: str) -> tuple[int, int, int]:
    """The RGB colour of a breed's synthetic photos: evenly spaced hues, alternately bright/dim."""
    if breed not in PET_BREEDS:
        raise ValueError(f"breed_color: {breed!r} is not one of the 37 PET_BREEDS (e.g. 'Abyssinian')")
    i = PET_BREEDS.index(breed)
    # Neighbouring hues differ in brightness too, so all 37 colours stay far apart.
    r, g, b = colorsys.hsv_to_rgb(i / len(PET_BREEDS), 0.75, 0.95 if i % 2 == 0 else 0.6)
    return round(r * 255), round(g * 255), round(b * 255)


def write_synthetic_pets(folder: str | os.PathLike, breeds: Sequence[str] | None = None,
                         n_per_breed: int = 3, kinds: Sequence[str] = ("rgb",),
                         size: tuple[int, int] = (160, 120), seed: int = 0,
                         start_index: int = 1) -> list[Path]:
    """Write ``folder/<breed>_<n>.jpg`` for each breed, cycling ``kinds``; returns the sorted paths.

    Args:
        folder: where the images go (created if needed), like the dataset's ``images/``.
        breeds: breed names from ``PET_BREEDS``; default all 37.
        n_per_breed: images per breed, numbered from ``start_index``.
        kinds: ``SYNTHETIC_KINDS`` used in turn, file after file.
        size: typical (width, height); each file is 80-120% of it on each side, so that batching
            without a resize fails just as it does with real photos.
        seed: the same seed writes the same bytes.
        start_index: number of the first image of each breed.
    """
    breeds = PET_BREEDS if breeds is None else tuple(breeds)
    unknown = [b for b in breeds if b not in PET_BREEDS]
    if unknown:
        raise ValueError(f"write_synthetic_pets: unknown breeds {unknown}; use names from PET_BREEDS")
    bad_kinds = [k for k in kinds if k not in SYNTHETIC_KINDS]
    if bad_kinds or not kinds:
        raise ValueError(f"write_synthetic_pets: kinds must be a non-empty selection of "
                         f"{SYNTHETIC_KINDS}, got {tuple(kinds)}")
    if n_per_breed < 1:
        raise ValueError(f"write_synthetic_pets: n_per_breed must be >= 1, got {n_per_breed}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for breed in breeds:
        for n in range(start_index, start_index + n_per_breed):
            rng = np.random.default_rng([seed, PET_BREEDS.index(breed), n])
            w, h = (max(round(s * rng.uniform(0.8, 1.2)), 1) for s in size)
            kind = kinds[len(paths) % len(kinds)]
            paths.append(write_image(folder / f"{breed}_{n}.jpg", kind, size=(w, h),
                                     color=breed_color(breed), seed=int(rng.integers(2**31))))
    return sorted(paths)


def write_labels_csv(folder: str | os.PathLike, paths: Sequence[str | os.PathLike],
                     valid_per_breed: int = 1) -> Path:
    """Write ``folder/labels.csv`` like the real sample's; the last files of each breed are valid.

    Columns: ``name,breed,species,is_valid,width,height,mode``; ``width``, ``height`` and ``mode``
    are what ``PIL.Image.open`` reports, i.e. as stored, before any EXIF rotation.
    """
    by_breed: dict[str, list[tuple[int, Path]]] = {}
    for p in map(Path, paths):
        match = _FILE_NAME.match(p.name)
        if not match:
            raise ValueError(f"write_labels_csv: {p.name!r} is not named <breed>_<number>.jpg")
        by_breed.setdefault(match[1], []).append((int(match[2]), p))
    rows = []
    for breed, numbered in by_breed.items():
        if not 0 <= valid_per_breed < len(numbered):
            raise ValueError(f"write_labels_csv: breed {breed} has {len(numbered)} images, so "
                             f"valid_per_breed={valid_per_breed} would leave none to train on")
        numbered.sort()
        for k, (_, p) in enumerate(numbered):
            with Image.open(p) as img:
                (width, height), mode = img.size, img.mode
            is_valid = int(k >= len(numbered) - valid_per_breed)
            rows.append([p.name, breed, "cat" if is_cat(breed) else "dog", is_valid, width, height, mode])
    out = Path(folder) / "labels.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:  # csv's default \r\n line ends, as in the real file
        writer = csv.writer(f)
        writer.writerow(["name", "breed", "species", "is_valid", "width", "height", "mode"])
        writer.writerows(rows)
    return out


# --- the full download's layout ---------------------------------------------------------------------

_LIST_HEADER = ("#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
                "#BREED ID: 1-25:Cat 1:12:Dog\n#All images with 1st letter as captial are cat images\n"
                "#images with small first letter are dog images\n")


def list_line(name: str) -> str:
    """The Oxford-IIIT list-file line of a photo name (``Abyssinian_100`` -> ``Abyssinian_100 1 1 1``)."""
    match = _FILE_NAME.match(name if name.endswith(".jpg") else f"{name}.jpg")
    if not match or match[1] not in PET_BREEDS:
        raise ValueError(f"list_line: {name!r} is not named <breed>_<number> with one of the 37 breeds")
    breed = match[1]
    order = sorted(PET_BREEDS, key=str.lower)
    same_species = [b for b in order if is_cat(b) == is_cat(breed)]
    return (f"{Path(name).stem} {order.index(breed) + 1} {1 if is_cat(breed) else 2} "
            f"{same_species.index(breed) + 1}")


def write_official_lists(root: str | os.PathLike, trainval: Sequence[str], test: Sequence[str]) -> Path:
    """Write ``root/annotations/{list,trainval,test}.txt`` as in the real download; returns the folder."""
    folder = Path(root) / "annotations"
    folder.mkdir(parents=True, exist_ok=True)
    lines = {name: [list_line(n) for n in names] for name, names in (("trainval", trainval), ("test", test))}
    (folder / "trainval.txt").write_text("".join(f"{line}\n" for line in lines["trainval"]))
    (folder / "test.txt").write_text("".join(f"{line}\n" for line in lines["test"]))
    everything = sorted(lines["trainval"] + lines["test"], key=str.lower)
    (folder / "list.txt").write_text(_LIST_HEADER + "".join(f"{line}\n" for line in everything))
    return folder


# What the real images/ holds besides plain JPEGs, by name: file -> (what it is, listed in the official lists).
AWKWARD_FILES = {
    "Abyssinian_100.mat": ("not an image (MATLAB data)", False),
    "Abyssinian_34.jpg": ("a GIF named .jpg", True),
    "Egyptian_Mau_14.jpg": ("a PNG named .jpg", True),
    "beagle_116.jpg": ("a CMYK JPEG", True),
    "chihuahua_121.jpg": ("a truncated JPEG", True),
}


def write_awkward_files(images: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """Write ``AWKWARD_FILES`` into ``images``: a .mat, a GIF and a PNG named .jpg, a CMYK JPEG and a
    truncated JPEG, each a picture of its breed's colour. Returns name -> path."""
    images = Path(images)
    images.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in AWKWARD_FILES:
        path = images / name
        if name.endswith(".mat"):
            path.write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(100))
        else:
            breed = _FILE_NAME.match(name)[1]
            img = make_image("rgb", size=(200, 150), color=breed_color(breed), seed=seed)
            if "GIF" in AWKWARD_FILES[name][0]:
                img.quantize(colors=64).save(path, format="GIF")
            elif "PNG" in AWKWARD_FILES[name][0]:
                img.save(path, format="PNG")
            elif "CMYK" in AWKWARD_FILES[name][0]:
                img.convert("CMYK").save(path, format="JPEG", quality=90)
            else:  # truncated: the first half of a JPEG
                img.save(path, format="JPEG", quality=90)
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
        out[name] = path
    return out


def write_full_layout(root: str | os.PathLike, photos: Sequence[str | os.PathLike], test_names: Sequence[str],
                      awkward: bool = True) -> Path:
    """A folder laid out like the full download (``images/`` + ``annotations/``) from existing photos.

    The photos are hard-linked into ``root/images`` (copied where links are impossible); the names in
    ``test_names`` form the official test list and the others trainval. With ``awkward`` the folder
    also gets ``AWKWARD_FILES`` (the listed ones in trainval), as the real download has such files.
    """
    root = Path(root)
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    names = []
    for src in map(Path, photos):
        target = images / src.name
        if not target.exists():
            try:
                os.link(src, target)
            except OSError:
                target.write_bytes(src.read_bytes())
        names.append(src.name)
    if awkward:
        write_awkward_files(images)
        names += [n for n, (_, listed) in AWKWARD_FILES.items() if listed]
    test = set(test_names)
    write_official_lists(root, [n for n in names if n not in test], [n for n in names if n in test])
    return root
