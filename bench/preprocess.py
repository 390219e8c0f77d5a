"""Benchmark: where a photo's decoding and preprocessing time goes, step by step, before and now.

    python bench/preprocess.py [--rounds 3] [--spec demo/model]

Every photo of $PETS_SAMPLE/images (original sizes), file to the model's (224, 224, 3) float
pixels, as ``Predictor.pixels`` computes them: the code before this benchmark was written (kept
here as ``before_load_array``, the baseline) and the engine's now, photo by photo in one run,
alternating which goes first. Each step is timed on its own (medians over all photos and rounds;
each ``<step>_ratio`` is the median over photos and rounds of now / before on the same photo):

    read        the file's bytes
    check       a JPEG signature and its end marker (a truncated file goes to PIL's clear error)
    header      the size, for the pixel limit before decoding: PIL's ``Image.open`` before,
                ``transforms.jpeg_header`` now
    decode      OpenCV's JPEG decoder, straight to RGB and upright (it applies the EXIF orientation
                itself)
    presize     the centre square, resampled once to the presize (``Presize``; uint8)
    float       the presize to float32
    resample    bilinear to the final size in float (``BatchAugment``'s identity warp)
    total       the whole call from a path, timed separately (so its Python overheads are in it)
    handoff     a decoded array handed to the predictor again, as the demo does (it decodes the upload
                first, then predicts on the array): a round trip through PIL before, ``rgb_array`` now
    demo_total  the whole call as the demo makes it: decode, hand over, preprocess

For reference, PIL's path (the fallback for other files): open + draft, decode, EXIF transpose,
RGB convert, to an array. Two alternatives for the last steps are measured, with their parity:
``resample_uint8`` (OpenCV's fixed-point bilinear on the uint8 presize, then float) and
``graph_resample`` (the presize handed over as uint8 and resampled inside an onnxruntime graph,
one thread, as a runtime would do it).

Parity against the training-time validation path (``load_array`` as before, ``Presize``, then
``BatchAugment`` on a tensor, as the ``DataLoaders`` compute it): the largest and the mean absolute
difference over all pixels of all photos, on the 0..1 scale. The machine this runs on may be
busy: compare the ratios, measured in the same run, more than the milliseconds. The last line is
one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageOps  # noqa: E402

from engine.data.files import format_of, has_jpeg_end  # noqa: E402
from engine.data.items import get_image_files  # noqa: E402
from engine.data.locate import pets_sample  # noqa: E402
from engine.data.preprocessing import Preprocessing  # noqa: E402
from engine.data.transforms import (  # noqa: E402
    MAX_PIXELS,
    _cv2,
    jpeg_header,
    load_array,
    load_image,
    rgb_array,
    to_rgb,
)

STEPS = ("read", "check", "header", "decode", "presize", "float", "resample")
WHOLE = ("total", "handoff", "demo_total")


def before_load_array(path, min_size=None, max_pixels=None) -> np.ndarray:
    """``transforms.load_array`` as it was before (the size from PIL's header): the baseline."""
    with open(path, "rb") as f:
        data = f.read()
    if format_of(data) == "JPEG" and has_jpeg_end(data):
        with Image.open(io.BytesIO(data)) as header:
            w, h = header.size
        if max_pixels is None or w * h <= max_pixels:
            reduce = 1
            while min_size is not None and reduce < 8 and min(w, h) // (reduce * 2) >= min_size:
                reduce *= 2
            cv2 = _cv2()
            flags = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                     8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce] | cv2.IMREAD_COLOR_RGB
            a = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
            if a is not None:
                return a
    return np.asarray(load_image(path, min_size, max_pixels))


def _steps(path, spec: Preprocessing, now: bool) -> tuple[dict[str, float], np.ndarray]:
    """One photo through the fast JPEG path, each step timed; ``now``: the engine's header reader."""
    cv2, presizer, t = _cv2(), spec.presizer(), [time.perf_counter()]
    with open(path, "rb") as f:
        data = f.read()
    t.append(time.perf_counter())
    assert format_of(data) == "JPEG" and has_jpeg_end(data)
    t.append(time.perf_counter())
    if now:
        w, h = jpeg_header(data)
    else:
        with Image.open(io.BytesIO(data)) as header:
            w, h = header.size
    t.append(time.perf_counter())
    reduce = 1
    while reduce < 8 and min(w, h) // (reduce * 2) >= spec.presize:
        reduce *= 2
    flags = {1: 0, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
             8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce] | cv2.IMREAD_COLOR_RGB
    a = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    t.append(time.perf_counter())
    b = presizer(a, train=False)
    t.append(time.perf_counter())
    f = b.astype(np.float32)
    t.append(time.perf_counter())
    cv2.resize(f, (spec.size, spec.size), interpolation=cv2.INTER_LINEAR)
    t.append(time.perf_counter())
    return {step: t[i + 1] - t[i] for i, step in enumerate(STEPS)}, b


def _pil_steps(path, spec: Preprocessing) -> dict[str, float]:
    """PIL's path (``load_image``: the fallback for every file the fast path does not take), each step timed."""
    t = [time.perf_counter()]
    img = Image.open(path)
    img.draft("RGB", (spec.presize, spec.presize))
    t.append(time.perf_counter())
    img.load()
    t.append(time.perf_counter())
    ImageOps.exif_transpose(img, in_place=True)
    t.append(time.perf_counter())
    rgb = to_rgb(img)
    t.append(time.perf_counter())
    np.asarray(rgb)
    t.append(time.perf_counter())
    img.close()
    return {f"pil_{step}": t[i + 1] - t[i] for i, step in enumerate(("open_draft", "decode", "exif", "rgb", "array"))}


def _resample_graph(spec: Preprocessing):
    """An onnxruntime session (one thread) taking the uint8 presize and resampling it to the final
    size in float, as the runtime's graph would if the last step moved into it."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    p, s = spec.presize, spec.size
    graph = helper.make_graph(
        [helper.make_node("Cast", ["presized"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("Resize", ["f", "", "", "sizes"], ["pixels"], mode="linear",
                          coordinate_transformation_mode="half_pixel")],
        "resample", [helper.make_tensor_value_info("presized", TensorProto.UINT8, [1, p, p, 3])],
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [1, s, s, 3])],
        [helper.make_tensor("sizes", TensorProto.INT64, [4], [1, s, s, 3])])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _training_pixels(path, spec: Preprocessing) -> np.ndarray:
    """(size, size, 3) float 0..255 as the DataLoaders' validation computes them: decode as before,
    ``Presize``, then ``BatchAugment``'s resample on a tensor (normalization undone)."""
    import torch

    from engine.data.augment import BatchAugment

    a = spec.presizer()(before_load_array(path, min_size=spec.presize), train=False)
    x = BatchAugment(spec)(torch.tensor(a).permute(2, 0, 1)[None].contiguous(), train=False)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return ((x * std + mean) * 255).permute(0, 2, 3, 1)[0].numpy()


def before_rgb_array(image: np.ndarray) -> np.ndarray:
    """``Predictor.load`` on an array before: through PIL and back."""
    return np.asarray(to_rgb(Image.fromarray(image)))


def _before(path, spec: Preprocessing) -> np.ndarray:
    return spec.validation_pixels(before_load_array(path, spec.presize, MAX_PIXELS))


def _now(path, spec: Preprocessing) -> np.ndarray:
    return spec.validation_pixels(load_array(path, spec.presize, MAX_PIXELS))


def _whole(path, spec: Preprocessing, now: bool) -> dict[str, float]:
    """The whole call from a path; the handoff of a decoded array; the demo's decode, handoff, preprocess."""
    load, handoff = (load_array, rgb_array) if now else (before_load_array, before_rgb_array)
    t = [time.perf_counter()]
    (_now if now else _before)(path, spec)
    t.append(time.perf_counter())
    a = load(path, spec.presize, MAX_PIXELS)
    t.append(time.perf_counter())
    handoff(a)
    t.append(time.perf_counter())
    spec.validation_pixels(handoff(load(path, spec.presize, MAX_PIXELS)))
    t.append(time.perf_counter())
    return {"total": t[1] - t[0], "handoff": t[3] - t[2], "demo_total": t[4] - t[3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the photos (default 3)")
    parser.add_argument("--spec", default=str(ROOT / "demo" / "model"),
                        help="an export folder whose preprocessing to use (default: the demo's model)")
    args = parser.parse_args()
    spec = Preprocessing.from_meta(json.loads(Path(args.spec, "meta.json").read_text()))
    photos = get_image_files(pets_sample() / "images")
    cv2, graph = _cv2(), _resample_graph(spec)
    times: dict[str, list[float]] = defaultdict(list)
    for r in range(args.rounds):
        for i, path in enumerate(photos):
            for now in ((True, False) if (i + r) % 2 else (False, True)):  # alternate which goes first
                tag = "now" if now else "before"
                steps, presized = _steps(path, spec, now)
                for step, seconds in {**steps, **_whole(path, spec, now)}.items():
                    times[f"{tag}_{step}"].append(seconds)
            for step, seconds in _pil_steps(path, spec).items():
                times[step].append(seconds)
            start = time.perf_counter()
            cv2.resize(presized, (spec.size, spec.size), interpolation=cv2.INTER_LINEAR).astype(np.float32)
            times["resample_uint8"].append(time.perf_counter() - start)
            start = time.perf_counter()
            graph.run(None, {"presized": presized[None]})
            times["graph_resample"].append(time.perf_counter() - start)

    gaps: dict[str, list[np.ndarray]] = defaultdict(list)
    for path in photos:
        want = _training_pixels(path, spec)
        presized = spec.presizer()(load_array(path, spec.presize, MAX_PIXELS), train=False)
        got = {"now": _now(path, spec), "before": _before(path, spec),
               "resample_uint8": cv2.resize(presized, (spec.size, spec.size),
                                            interpolation=cv2.INTER_LINEAR).astype(np.float32),
               "graph_resample": graph.run(None, {"presized": presized[None]})[0][0]}
        for name, x in got.items():
            gaps[name].append(np.abs(x - want) / 255)

    ms = {name: statistics.median(values) * 1e3 for name, values in sorted(times.items())}
    figures = {"photos": len(photos), "rounds": args.rounds, **{f"{k}_ms": v for k, v in ms.items()}}
    for step in (*STEPS, *WHOLE):  # now / before on the same photo in the same round: robust to a busy machine
        pairs = zip(times[f"now_{step}"], times[f"before_{step}"])
        figures[f"{step}_ratio"] = statistics.median(n / b for n, b in pairs)
    figures["resample_uint8_vs_float"] = ms["resample_uint8"] / (ms["now_float"] + ms["now_resample"])
    figures["graph_resample_vs_float"] = ms["graph_resample"] / (ms["now_float"] + ms["now_resample"])
    for name, g in gaps.items():
        figures[f"{name}_max_abs"] = float(max(x.max() for x in g))  # 0..1 scale
        figures[f"{name}_mean_abs"] = float(np.mean([x.mean() for x in g]))
    for name, values in ms.items():
        print(f"{name:22s} {values:7.3f} ms")
    print(json.dumps({k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
