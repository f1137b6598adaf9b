"""Model cards: the YAML file beside each ``.onnx`` that says what the model takes and gives.

The format is documented in ``models/CARD.md``.  :func:`load_card` reads and checks a card completely and
reports every problem at once with its file and line (:class:`~edgefuse.errors.ValidationError`); the
sha256 of the ``.onnx`` named by the card is checked by :func:`check_sha256` when the model is loaded.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from edgefuse._yaml import Collector, load_yaml, plain
from edgefuse.errors import ModelError, Problem, ValidationError

__all__ = [
    "DTYPES",
    "EDGES",
    "CardInput",
    "CardOutput",
    "ModelCard",
    "Preprocess",
    "card_path_for",
    "check_card",
    "check_sha256",
    "load_card",
    "sha256_of",
]

#: element types a card may declare (ONNX tensor element type names as ONNX Runtime reports them)
DTYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "uint8": "tensor(uint8)",
          "int8": "tensor(int8)", "int32": "tensor(int32)", "int64": "tensor(int64)", "bool": "tensor(bool)"}
#: edge types a model input/output may be wired to, and the layouts each accepts
EDGES: dict[str, tuple[str, ...]] = {"Image": ("NCHW", "NHWC", "CHW", "HWC", "HW"), "PointCloud": ("NPF", "PF"),
                                     "Tensor": ("ANY",)}
#: image encodings a card may ask for, and their channel count
ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "32FC1": 1, "16UC1": 1, "32FC3": 3}
CARD_KEYS = {"edgefuse_model_card", "name", "model", "sha256", "description", "inputs", "outputs", "training",
             "metric", "figures", "quantization", "opset"}
INPUT_KEYS = {"name", "edge", "shape", "dtype", "layout", "frame", "encoding", "preprocess", "fields"}
OUTPUT_KEYS = {"name", "edge", "shape", "dtype", "layout", "frame", "encoding"}
PRE_KEYS = {"resize", "interpolation", "scale", "mean", "std"}
Dim = int | str


@dataclass(frozen=True)
class Preprocess:
    """What the ``onnx_model`` stage does to an image before the model: resize to ``resize`` (H, W) with
    ``interpolation`` (``sparse_min``, for sparse depth images: the smallest positive value in each output
    pixel's source footprint, 0 where there is none, so no return is lost by downscaling), then
    ``(value * scale - mean[c]) / std[c]`` per channel, in the card's layout."""

    resize: tuple[int, int] | None = None
    interpolation: Literal["bilinear", "nearest", "sparse_min"] = "bilinear"
    scale: float = 1.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


@dataclass(frozen=True)
class CardInput:
    """One model input: ONNX name (= the stage's input port), the edge type wired to it, shape (ints or
    symbolic names), dtype, layout, the image encoding (channel order) the model expects, and for point
    clouds the per-point fields (``shape`` is ``[1, N, F]`` or ``[N, F]``; N points padded with zeros)."""

    name: str
    edge: str
    shape: tuple[Dim, ...]
    dtype: str
    layout: str
    frame: str | None = None
    encoding: str | None = None
    fields: tuple[str, ...] = ()
    preprocess: Preprocess = field(default_factory=Preprocess)
    line: int | None = None

    @property
    def channels(self) -> Dim | None:
        """The channel dimension of an image input (None for layouts without one)."""
        if "C" not in self.layout:
            return None
        return self.shape[self.layout.index("C")]


@dataclass(frozen=True)
class CardOutput:
    """One model output: ONNX name (= the stage's output port), edge type, shape, dtype, layout and, for an
    ``Image`` output, its encoding (``32FC1`` …)."""

    name: str
    edge: str
    shape: tuple[Dim, ...]
    dtype: str
    layout: str
    frame: str | None = None
    encoding: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class ModelCard:
    """A checked model card.  ``model_path`` is absolute; ``extra`` keeps the descriptive sections
    (training data and licence, metric, FP32/INT8 figures, quantization) as plain data."""

    path: Path
    name: str
    model_path: Path
    sha256: str
    inputs: tuple[CardInput, ...]
    outputs: tuple[CardOutput, ...]
    extra: dict[str, Any]

    def input(self, name: str) -> CardInput:
        """The input called ``name``."""
        for i in self.inputs:
            if i.name == name:
                return i
        raise ModelError(f"model card {self.path} has no input '{name}'", file=self.path)


def card_path_for(model: str | Path) -> Path:
    """The card of ``model``: ``x.onnx`` → ``x.yaml`` (an INT8 ``x.int8.onnx`` has its own ``x.int8.yaml``)."""
    return Path(model).with_suffix(".yaml")


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha256(card: ModelCard) -> str:
    """The model file's sha256; raises :class:`ModelError` when it is not the card's."""
    digest = sha256_of(card.model_path)
    if digest != card.sha256:
        raise ModelError(f"{card.model_path} has sha256 {digest}, but its card {card.path} says {card.sha256}; "
                         "the model changed since the card was written (re-run the export or fix the card)",
                         file=card.path)
    return digest


def load_card(path: str | Path) -> ModelCard:
    """Read and check a card; raises :class:`ValidationError` listing every problem with file and line."""
    card, problems = check_card(path)
    if problems or card is None:
        raise ValidationError(problems=problems or [Problem("invalid model card", str(path))], kind=str(path))
    return card


def _dims(value: Any) -> tuple[Dim, ...] | None:
    if not isinstance(value, list) or not value:
        return None
    out: list[Dim] = []
    for d in value:
        if isinstance(d, bool) or not isinstance(d, int | str) or (isinstance(d, int) and d < 1) or d == "":
            return None
        out.append(d)
    return tuple(out)


def _numbers(value: Any) -> tuple[float, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                              and math.isfinite(v) for v in value):
        return None
    return tuple(float(v) for v in value)


def _check_pre(raw: Any, c: Collector, where: str) -> Preprocess:
    if raw is None:
        return Preprocess()
    if not isinstance(raw, dict):
        c.add(f"{where}.preprocess must be a mapping", raw)
        return Preprocess()
    for key in raw:
        if key not in PRE_KEYS:
            c.add(f"{where}.preprocess: unknown key '{key}' (known: {', '.join(sorted(PRE_KEYS))})", raw, key)
    resize = None
    if raw.get("resize") is not None:
        dims = _dims(plain(raw["resize"]))
        if dims is None or len(dims) != 2 or not all(isinstance(d, int) for d in dims):
            c.add(f"{where}.preprocess.resize must be [height, width] in pixels", raw, "resize")
        else:
            resize = (int(dims[0]), int(dims[1]))
    interp = raw.get("interpolation", "bilinear")
    if interp not in ("bilinear", "nearest", "sparse_min"):
        c.add(f"{where}.preprocess.interpolation must be bilinear, nearest or sparse_min, got {interp!r}", raw,
              "interpolation")
        interp = "bilinear"
    scale = raw.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale == 0:
        c.add(f"{where}.preprocess.scale must be a finite non-zero number, got {scale!r}", raw, "scale")
        scale = 1.0
    mean = _numbers(plain(raw.get("mean", [])))
    std = _numbers(plain(raw.get("std", [])))
    if mean is None:
        c.add(f"{where}.preprocess.mean must be a list of numbers (one per channel)", raw, "mean")
        mean = ()
    if std is None or any(s <= 0 for s in std):
        c.add(f"{where}.preprocess.std must be a list of positive numbers (one per channel)", raw, "std")
        std = ()
    return Preprocess(resize, interp, float(scale), mean, std)


def _check_tensor(raw: Any, c: Collector, where: str, is_input: bool) -> dict[str, Any] | None:
    keys = INPUT_KEYS if is_input else OUTPUT_KEYS
    if not isinstance(raw, dict):
        c.add(f"{where} must be a mapping", raw)
        return None
    for key in raw:
        if key not in keys:
            c.add(f"{where}: unknown key '{key}' (known: {', '.join(sorted(keys))})", raw, key)
    ok = True
    name = raw.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        c.add(f"{where}: 'name' must be the ONNX {'input' if is_input else 'output'} name (an identifier, it is "
              f"the stage's port), got {name!r}", raw, "name" if "name" in raw else None)
        ok = False
    edge = raw.get("edge")
    if edge not in EDGES:
        c.add(f"{where}: 'edge' must be one of {', '.join(EDGES)}, got {edge!r}", raw,
              "edge" if "edge" in raw else None)
        ok = False
    shape = _dims(plain(raw.get("shape")))
    if shape is None:
        c.add(f"{where}: 'shape' must be a list of positive integers or symbolic names", raw,
              "shape" if "shape" in raw else None)
        ok = False
    dtype = raw.get("dtype")
    if dtype not in DTYPES:
        c.add(f"{where}: 'dtype' must be one of {', '.join(DTYPES)}, got {dtype!r}", raw,
              "dtype" if "dtype" in raw else None)
        ok = False
    layout = raw.get("layout", "ANY" if edge == "Tensor" else None)
    if edge in EDGES and layout not in EDGES[edge]:
        c.add(f"{where}: 'layout' for edge {edge} must be one of {', '.join(EDGES[edge])}, got {layout!r}", raw,
              "layout" if "layout" in raw else None)
        ok = False
    elif shape is not None and isinstance(layout, str) and layout != "ANY" and len(layout) != len(shape):
        c.add(f"{where}: layout {layout} has {len(layout)} axes but shape {list(shape)} has {len(shape)}", raw,
              "shape")
        ok = False
    encoding = raw.get("encoding")
    if encoding is not None and encoding not in ENCODINGS:
        c.add(f"{where}: 'encoding' must be one of {', '.join(ENCODINGS)}, got {encoding!r}", raw, "encoding")
        ok = False
    frame = raw.get("frame")
    if frame is not None and (not isinstance(frame, str) or not frame):
        c.add(f"{where}: 'frame' must be a frame name", raw, "frame")
        ok = False
    if not ok:
        return None
    out = {"name": name, "edge": edge, "shape": shape, "dtype": dtype, "layout": layout, "frame": frame,
           "encoding": encoding, "line": _line(raw)}
    if edge == "Image" and ok and shape is not None and isinstance(layout, str):
        if encoding is None:
            c.add(f"{where}: an Image {'input' if is_input else 'output'} needs 'encoding' "
                  f"(one of {', '.join(ENCODINGS)})", raw, "edge")
            return None
        if "C" in layout:
            ch = shape[layout.index("C")]
            if isinstance(ch, int) and ch != ENCODINGS[encoding]:
                c.add(f"{where}: encoding {encoding} has {ENCODINGS[encoding]} channel(s) but the shape's C axis is "
                      f"{ch}", raw, "encoding")
                return None
        elif ENCODINGS[encoding] != 1:
            c.add(f"{where}: layout {layout} has no channel axis, so encoding must have 1 channel", raw, "encoding")
            return None
    if is_input:
        out["preprocess"] = _check_pre(raw.get("preprocess"), c, where)
        fields = plain(raw.get("fields", []))
        if edge == "PointCloud":
            if not isinstance(fields, list) or not fields or not all(isinstance(f, str) and f for f in fields):
                c.add(f"{where}: a PointCloud input needs 'fields' (the per-point fields, in order)", raw,
                      "fields" if "fields" in raw else "edge")
                return None
            assert shape is not None
            if isinstance(shape[-1], int) and shape[-1] != len(fields):
                c.add(f"{where}: {len(fields)} fields but the shape's last axis is {shape[-1]}", raw, "fields")
                return None
        out["fields"] = tuple(fields) if isinstance(fields, list) else ()
        pre = out["preprocess"]
        assert isinstance(pre, Preprocess)
        ch = ENCODINGS.get(str(encoding), 1)
        for key, vals in (("mean", pre.mean), ("std", pre.std)):
            if vals and len(vals) not in (1, ch):
                c.add(f"{where}.preprocess.{key} has {len(vals)} values; give 1 or {ch} (one per channel)",
                      raw.get("preprocess"), key)
                return None
    return out


def _line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return None if lc is None else int(lc.line) + 1


def check_card(path: str | Path) -> tuple[ModelCard | None, list[Problem]]:
    """Check a card; ``(card or None, problems)``.  The ``.onnx`` it names must exist (its content is checked
    when loaded)."""
    path = Path(path)
    data, problems = load_yaml(path)
    if problems:
        return None, problems
    c = Collector(str(path))
    if not isinstance(data, dict):
        c.add("a model card must be a YAML mapping")
        return None, c.problems
    for key in data:
        if key not in CARD_KEYS:
            c.add(f"unknown key '{key}' (known: {', '.join(sorted(CARD_KEYS))})", data, key)
    if data.get("edgefuse_model_card") != 1:
        c.add(f"'edgefuse_model_card: 1' expected (got {data.get('edgefuse_model_card')!r})", data,
              "edgefuse_model_card" if "edgefuse_model_card" in data else None)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        c.add("'name' must be a non-empty string", data, "name" if "name" in data else None)
    model = data.get("model")
    model_path = None
    if not isinstance(model, str) or not model.endswith(".onnx"):
        c.add(f"'model' must name the .onnx file (relative to the card), got {model!r}", data,
              "model" if "model" in data else None)
    else:
        model_path = (path.parent / model).absolute()
        if not model_path.is_file():
            c.add(f"model file not found: {model_path}", data, "model")
    sha = data.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(ch not in "0123456789abcdef" for ch in sha):
        c.add("'sha256' must be the 64 lower-case hex digits of the .onnx file's sha256", data,
              "sha256" if "sha256" in data else None)
    ins: list[CardInput] = []
    outs: list[CardOutput] = []
    for section, is_input in (("inputs", True), ("outputs", False)):
        raw = data.get(section)
        if not isinstance(raw, list) or not raw:
            c.add(f"'{section}' must be a non-empty list", data, section if section in data else None)
            continue
        seen: set[str] = set()
        for i, item in enumerate(raw):
            parsed = _check_tensor(item, c, f"{section}[{i}]", is_input)
            if parsed is None:
                continue
            if parsed["name"] in seen:
                c.add(f"{section}[{i}]: name '{parsed['name']}' used twice", item, "name")
                continue
            seen.add(parsed["name"])
            if is_input:
                ins.append(CardInput(**parsed))
            else:
                outs.append(CardOutput(**parsed))
    if c.problems or model_path is None:
        return None, c.problems
    extra = {k: plain(v) for k, v in data.items() if k in ("description", "training", "metric", "figures",
                                                          "quantization", "opset")}
    return ModelCard(path.absolute(), str(name), model_path, str(sha), tuple(ins), tuple(outs), extra), []
