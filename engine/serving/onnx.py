"""The model as an ONNX graph for onnxruntime: what a server runs to answer photos fast on a CPU.

onnxruntime is the runtime people pick for CPU inference: it needs no C++ compiler, starts in a
moment, fuses layers and picks its kernels for the CPU it runs on. ``export_onnx`` writes the
whole prediction as one graph:

    photo pixels (n, size, size, 3), float 0..255, as the preprocessing leaves them
      -> normalize -> (n, 3, size, size) -> body -> breed logits (n, classes)
                                                 -> ImageNet logits (n, 1000), when the model kept that head
                                                 -> maps (n, classes, h', w'): where each breed's logit came from

The maps (``engine/cam.py``: exact class-activation maps for our head) are nodes added after the
export (``add_activation_maps``) on the body's last feature map, so a graph exported before they
existed gets the very same nodes when it is loaded (``load_predictor``), without PyTorch.

The body's TensorFlow-style "same" padding depends on the input size, which the graph would
recompute from shapes at every call; the size is fixed by the preprocessing, so the padding is
made static first (``static_same_padding``) and the graph holds plain convolutions.

``quantize_int8`` makes an 8-bit copy, calibrated on training photos (static quantization): on
CPUs with 8-bit dot-product units (VNNI, AMX) it runs about twice as fast. ``export`` keeps it only
when it agrees with the float graph (see ``export.py``).
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["ServingModule", "static_same_padding", "export_onnx", "add_activation_maps", "has_activation_maps",
           "graph_outputs", "MAPS", "quantize_int8", "OnnxRunner", "has_int8_units", "check_input", "probabilities",
           "reference_probabilities", "usable_cpus"]

MAPS = "maps"  # the graph output with the class-activation maps


def static_same_padding(body: nn.Module, size: int) -> nn.Module:
    """A copy of ``body`` in which every input-size-dependent "same" padding (timm's ``Conv2dSame``)
    is replaced by the fixed padding it computes for ``size`` x ``size`` inputs: same outputs."""
    from timm.layers import Conv2dSame
    from timm.layers.padding import get_same_padding

    body = copy.deepcopy(body)
    shapes: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda m, args, name=name: shapes.__setitem__(name, args[0].shape[-2:]))
             for name, m in body.named_modules() if isinstance(m, Conv2dSame)]
    with torch.no_grad():
        body(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    for name, (h, w) in shapes.items():
        parent_name, _, child = name.rpartition(".")
        parent = body.get_submodule(parent_name) if parent_name else body
        conv = getattr(parent, child)
        ph = get_same_padding(h, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pw = get_same_padding(w, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        plain = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                          conv.groups, conv.bias is not None)
        plain.weight, plain.bias = conv.weight, conv.bias
        setattr(parent, child, nn.Sequential(nn.ZeroPad2d((pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)), plain))
    return body


class ServingModule(nn.Module):
    """Pixels in, logits out: the normalization, the body (with static padding) and both heads."""

    def __init__(self, model: nn.Module, preprocessing):
        super().__init__()
        self.body, self.head = static_same_padding(model.body, preprocessing.size), model.head
        self.imagenet = model.imagenet_classifier
        scale, shift = preprocessing.scale_shift()  # the normalization as x * scale + shift, kept in the graph
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, pixels: torch.Tensor):
        x = pixels.permute(0, 3, 1, 2) * self.scale + self.shift  # (n, h, w, 3) 0..255 -> (n, 3, h, w) normalized
        features = self.body(x)  # (n, C, h', w')
        if self.imagenet is None:
            return (self.head(features),)
        return self.head(features), self.imagenet(features.mean((2, 3)))


def export_onnx(model: nn.Module, preprocessing, path: str | Path | None = None) -> bytes:
    """The ONNX graph of ``model`` for ``preprocessing``'s input size, as bytes (also written to
    ``path`` when given). Batch size is free; the image size is the preprocessing's."""
    model = copy.deepcopy(model).float().eval().cpu()
    module = ServingModule(model, preprocessing).eval()
    names = ["breeds"] + (["imagenet"] if model.imagenet_classifier is not None else [])
    example = torch.zeros(2, preprocessing.size, preprocessing.size, 3)
    buffer = io.BytesIO()
    axes = {"pixels": {0: "n"}, **{name: {0: "n"} for name in names}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its successor
        try:
            torch.onnx.export(module, (example,), buffer, dynamo=False, input_names=["pixels"], output_names=names,
                              dynamic_axes=axes, opset_version=17)
        except (TypeError, RuntimeError, NotImplementedError, AttributeError):
            # a PyTorch whose TorchScript-based exporter is gone: the torch.export one (needs onnxscript)
            program = torch.onnx.export(module, (example,), dynamo=True, input_names=["pixels"], output_names=names,
                                        dynamic_shapes=({0: torch.export.Dim("n", min=1, max=1024)},))
            buffer = io.BytesIO(program.model_proto.SerializeToString())
    from ..cam import fold_head

    with torch.no_grad():
        data = add_activation_maps(buffer.getvalue(), fold_head(model.head)[0].numpy())
    if path is not None:
        Path(path).write_bytes(data)
    return data


def has_activation_maps(graph: bytes) -> bool:
    """Whether a graph from ``export_onnx`` has the ``maps`` output (exports before it had two outputs).

    Asked at every start of the demo, so it reads the output names straight from the protobuf
    encoding (``graph_outputs``) instead of importing the ``onnx`` package (about 0.5 s)."""
    return MAPS in graph_outputs(graph)


def _fields(data: memoryview):
    """The (field number, value) pairs of one protobuf message: a varint is an int, a length-delimited
    field a memoryview; fixed-size fields are skipped."""
    i = 0

    def varint():
        nonlocal i
        value = shift = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, kind = key >> 3, key & 7
        if kind == 0:
            yield number, varint()
        elif kind == 2:
            n = varint()
            yield number, data[i:i + n]
            i += n
        elif kind in (1, 5):
            i += 8 if kind == 1 else 4
        else:
            raise ValueError(f"not an ONNX model: protobuf wire type {kind} at byte {i}")


def graph_outputs(model: bytes) -> list[str]:
    """The output names of a serialized ONNX model, read from its protobuf encoding: ModelProto field 7
    (the graph), GraphProto field 12 (its outputs), ValueInfoProto field 1 (a name)."""
    names = []
    for number, graph in _fields(memoryview(model)):
        if number == 7 and isinstance(graph, memoryview):
            for field, output in _fields(graph):
                if field == 12 and isinstance(output, memoryview):
                    names += [bytes(v).decode() for n, v in _fields(output) if n == 1 and isinstance(v, memoryview)]
    return names


def add_activation_maps(graph: bytes, weight: np.ndarray) -> bytes:
    """``graph`` with one more output, ``maps`` (n, classes, h, w): ``cam.activation_maps`` computed
    from the head's folded weight (``cam.fold_head``: (classes, 2C)) on the body's last feature map,
    the input of the head's max pooling (its one ReduceMax node). A float or an int8 graph alike."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load_from_string(graph)
    g = model.graph
    if any(o.name == MAPS for o in g.output):
        return graph
    pools = [node for node in g.node if node.op_type == "ReduceMax"]
    if len(pools) != 1:
        raise ValueError(f"the graph has {len(pools)} ReduceMax nodes, not the head's one: cannot find its features")
    features, k = pools[0].input[0], weight.shape[0]

    def name(s: str) -> str:
        return f"/maps/{s}"

    g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(weight, np.float32), name("weight")),
                          numpy_helper.from_array(np.array([2, 3], np.int64), name("axes")),
                          numpy_helper.from_array(np.array([0, 0, -1], np.int64), name("flat_shape")),
                          numpy_helper.from_array(np.array([k], np.int64), name("classes"))])
    shape_of = [helper.make_node("Shape", [features], [name(part)], start=a, end=b)
                 for part, a, b in (("n", 0, 1), ("hw", 2, 4))]
    nodes = shape_of + [
        helper.make_node("ReduceMax", [features], [name("peak")], axes=[2, 3], keepdims=1),
        helper.make_node("Equal", [features, name("peak")], [name("is_peak")]),
        helper.make_node("Cast", [name("is_peak")], [name("peaks")], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", [name("peaks"), name("axes")], [name("ties")], keepdims=1),
        helper.make_node("Div", [name("peaks"), name("ties")], [name("share")]),
        helper.make_node("Mul", [features, name("share")], [name("max_part")]),
        helper.make_node("ReduceProd", [name("hw")], [name("cells_int")], keepdims=1),
        helper.make_node("Cast", [name("cells_int")], [name("cells")], to=TensorProto.FLOAT),
        helper.make_node("Div", [features, name("cells")], [name("mean_part")]),
        helper.make_node("Concat", [name("mean_part"), name("max_part")], [name("parts")], axis=1),
        helper.make_node("Reshape", [name("parts"), name("flat_shape")], [name("flat")]),  # (n, 2C, h*w)
        helper.make_node("MatMul", [name("weight"), name("flat")], [name("maps_flat")]),  # (n, classes, h*w)
        helper.make_node("Concat", [name("n"), name("classes"), name("hw")], [name("maps_shape")], axis=0),
        helper.make_node("Reshape", [name("maps_flat"), name("maps_shape")], [MAPS]),
    ]
    g.node.extend(nodes)
    g.output.append(helper.make_tensor_value_info(MAPS, TensorProto.FLOAT, ["n", k, "h", "w"]))
    return model.SerializeToString()


def usable_cpus() -> int:
    """The cores this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def has_int8_units() -> bool:
    """Whether this CPU has 8-bit dot-product instructions (VNNI or AMX), where int8 pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: no cheap way to know, so stay with float
        return False
    return any(flag in flags for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of a numpy array of logits (the graphs return logits)."""
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def check_input(size: int) -> np.ndarray:
    """A fixed, structured (1, size, size, 3) picture (gradients, a disc, stripes) for comparing runtimes."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    disc = ((x - 0.4) ** 2 + (y - 0.55) ** 2 < 0.06).astype(np.float32)
    r = 255 * (0.6 * x + 0.4 * disc)
    g = 255 * (0.5 * y + 0.3 * (np.sin(40 * x) > 0))
    b = 255 * (0.7 * (1 - x * y) * (1 - disc))
    return np.stack([r, g, b], -1)[None].clip(0, 255).astype(np.float32)


def reference_probabilities(model: nn.Module, preprocessing) -> list[np.ndarray]:
    """The float32 PyTorch model's probabilities on ``check_input``: [breeds (1, classes)] and,
    when the model has that head, [ImageNet (1, 1000)]. What a graph must reproduce to be used."""
    model = copy.deepcopy(model).float().eval().cpu()  # the caller's model stays as it is
    with torch.inference_mode():
        x = torch.from_numpy(check_input(preprocessing.size)).permute(0, 3, 1, 2)  # (1, 3, size, size) 0..255
        features = model.body(preprocessing.normalize(x))
        want = [model.head(features).softmax(1).cpu().numpy()]
        if model.imagenet_classifier is not None:
            want.append(model.imagenet_logits(features).softmax(1).cpu().numpy())
    return want


class OnnxRunner:
    """An onnxruntime session for a graph from ``export_onnx``: ``run(pixels)`` -> logits.

    Args:
        model: the graph, as a file path or bytes.
        device: "cpu", or "cuda" for the CUDA execution provider (onnxruntime-gpu).
        threads: intra-op threads (default: every core, for the lowest latency per photo).
    """

    def __init__(self, model: str | Path | bytes, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or usable_cpus()
        options.inter_op_num_threads = 1
        # Waiting threads that spin would take the CPU from a web server's other threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(source, options, providers=providers)
        self.outputs = [o.name for o in self.session.get_outputs()]

    def run(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(n, size, size, 3) float32 pixels 0..255 -> (breed logits (n, classes), ImageNet logits or
        None, maps (n, classes, h, w) or None for a graph without them)."""
        out = dict(zip(self.outputs, self.session.run(None, {"pixels": np.ascontiguousarray(pixels, np.float32)})))
        return out["breeds"], out.get("imagenet"), out.get(MAPS)


def quantize_int8(model: bytes, calibration: Iterable[np.ndarray]) -> bytes:
    """Static int8 quantization of a graph from ``export_onnx``: weights per channel, activations
    calibrated on ``calibration`` (pixel arrays (1, size, size, 3), e.g. training photos).

    Only the convolutions are quantized, and not the first and the last one: the first sees the
    raw pixels and the last makes the features the heads read, and in 8 bits those two moved the
    top breed on 4 of the sample's 370 photos (1.1%, over ``export``'s 1% limit); with them in
    float the int8 graph named the float graph's breed on 368 of 370 at the same validation error.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {"pixels": np.ascontiguousarray(batch, dtype=np.float32)}

    with tempfile.TemporaryDirectory(prefix="petbreeds-int8-") as tmp:
        src, pre, out = Path(tmp, "f32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(model)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        convs = [node.name for node in onnx.load(str(pre)).graph.node if node.op_type == "Conv"]
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=[convs[0], convs[-1]] if convs else [])
        return out.read_bytes()
