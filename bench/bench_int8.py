"""INT8 vs FP32 on a real third-party conv net: the PP-OCRv4 text detector shipped in rapidocr-onnxruntime.

Model: ``ch_PP-OCRv4_det_infer.onnx`` (Apache-2.0, from the ``rapidocr-onnxruntime`` wheel; ``pip install
'edgefuse[int8bench]'``), quantized with :func:`edgefuse.infer.quantize.quantize_model`.  Every frame is
resized to 480x640 and pre-processed as RapidOCR's ``DetPreProcess`` does (BGR, x/255, mean 0.5, std 0.5, NCHW).

Data.  Calibration: 3 real photos/scans of text from OpenCV's sample data (tests/data/opencv_samples/text_*,
see SOURCE.md) + sign/label/plate strings rendered with ``cv2.putText`` onto RADIATE ZED-left and every 9th
EuRoC frame.  Held-out, disjoint in frames *and* strings (own word list, plates from another alphabet): strings
rendered onto other RADIATE ZED-right and EuRoC frames, nuScenes, KITTI, OpenCalib, ACFR frames and OpenCV's
chessboard photos (3 renders of up to 9 strings per frame, five Hershey faces upright or italic, cap heights
~9-45 px, dark or light ink, plain, outlined or on a plate), plus 6 other real text photos and the RADIATE
ZED-right frame with shop signs (no ground truth).

Task metric (primary): text detection against ground truth, ICDAR-style.  The ground-truth box of a rendered
string is the tight box of its ink; detections are RapidOCR's DB post-processing (map > 0.3, box score > 0.5,
min side 3 px, unclip ratio 1.6, axis-aligned); precision / recall / hmean at IoU >= 0.5 with one-to-one
matching (pairs by decreasing IoU); detections mostly (> 50 %) inside a don't-care box are dropped, don't-care
being what FP32 finds on the frame before the strings were drawn, away from every string (background lettering
that is not annotated).  Spread: a paired bootstrap over frames (2000 resamples) of the relative hmean change
gives its 95 % interval, so the reader sees whether a 1 % change is resolvable.  The mixed-precision search
(``*_auto``) is judged on every other rendered frame (``select_half``); ``test_half`` is the change on the
frames it never saw.  Secondary: agreement with FP32 (probability-mask F1 on all held-out frames and on the
real photos, box F1 against FP32's boxes) and max/mean absolute output difference.  The metrics' floor: FP32
against FP32 (must be exact), FP32 on inputs changed imperceptibly (1 grey level of Gaussian noise; JPEG q95).

Latency: median of ``--runs`` batch-1 runs at 1 and 2 ONNX Runtime threads, the FP32, folded FP32 and INT8 sessions
in the same process taking turns (order rotated each round) so load changes on the shared machine hit all;
``os.getloadavg()`` is recorded. The FP32 baseline (``fp32``) is the faster of the original model and the original
with the constant folds ``quantize_model`` applies before quantizing (``fp32_folded``: hard-swish ``/6`` as a Mul,
the learnable-affine scale/bias Mul/Add folded into the convs; they speed FP32 up too, so the INT8 model is not
compared against a weaker FP32 than a user could have). ``--isolated ROUNDS``: also each (model, threads) session
alone in its own process, the configurations rotating over ROUNDS rounds (``latency_ms_isolated``): the deployment
case, and the one that counts at 2 threads (FP32 alone scales from 1 to 2 threads far better than when another
session's pool threads share the cores). ``--renders N --heldout-seed S``: a fresh held-out sample (new renders on
the same held-out frames; calibration unchanged), for a model tuned while looking at the default sample.
``goal_met``: hmean (GT, all held-out frames) within 1 % relative of FP32 and speedup >= 1.3 at 1 and 2 threads,
interleaved and (when measured) isolated.

Variants (``--variants``): ``qdq`` (QDQ, per-channel int8 weights, uint8 activations = U8S8, MinMax),
``qdq_rr`` (+ reduce_range), ``qoperator`` (QLinearConv), ``qdq_tensor`` (per-tensor weights), ``qdq_s8s8``
(int8 activations), ``qdq_entropy`` / ``qdq_percentile`` (calibration method), ``qdq_act_sym`` /
``qdq_range_sym`` / ``qdq_weight_asym`` (ORT's ActivationSymmetric / CalibTensorRangeSymmetric /
WeightSymmetric=False), ``qdq_conv`` (only Conv quantized), ``qdq_nohead`` (the head's ConvTranspose,
BatchNormalization, Sigmoid float), ``qdq_nofirst_nohead`` (+ the first conv), ``qdq_float_stem`` (the first
three convs float), ``qdq_float_act`` (hard-swish Clip/Div float), ``qdq_auto`` / ``qdq_percentile_auto``
(mixed precision: ``QuantizeOptions.auto_exclude``, the most sensitive blocks kept float until the hmean drop
on the selection half is within ``--tolerance``), ``qat`` (the ``qdq`` path applied to the detector fine-tuned
by quantization-aware distillation, ``bench/qat_ppocr.py``, on calibration-side frames and strings only; scored
against the ORIGINAL FP32 model, the fine-tuned FP32 model's own hmean reported as ``qat_fp32``).

    .venv/bin/python bench/bench_int8.py [--runs 30] [--variants qdq,qdq_auto] [--isolated 5]
        [--renders 6 --heldout-seed 101] [--out bench/results/int8.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import environment, shared_data, unwind_on_sigterm

from edgefuse.infer.quantize import QuantizeOptions, latency_times, quantize_model

ROOT = Path(__file__).resolve().parents[1]
#: what this run writes besides its results (its folder of temporary models; removed when it is interrupted)
_WRITING: list[Path] = []
DATA = shared_data()
#: real photographs and scans of text (OpenCV's sample data, copied with SOURCE.md into tests/data)
TEXT = ROOT / "tests" / "data" / "opencv_samples"
REAL_CALIBRATION = ["text_imageTextN.png", "text_sudoku.png", "text_box.png"]
REAL_HELDOUT = ["text_imageTextR.png", "text_box_in_scene.png", "text_licenseplate_motion.jpg", "text_messi5.jpg",
                "text_left.jpg", "text_right.jpg"]
#: sign, label and plate strings rendered onto real frames (cv2.putText): words disjoint between the sets, plates
#: drawn from disjoint alphabets, so no held-out string was seen in calibration
WORDS_CALIBRATION = ["STOP", "EXIT 12", "Main St", "PARKING", "No Entry", "Bus Only", "30", "Hotel", "Pharmacy",
                     "Open 24h", "Loading Bay", "Gate 3", "SLOW", "Taxi", "Library", "Station Rd", "Museum", "Lane 2",
                     "Garage", "Hospital", "Police", "North 7", "Airport", "Ticket Office"]
WORDS_HELDOUT = ["YIELD", "Market Rd", "ONE WAY", "Cafe", "Bakery", "Platform 2", "50", "Toll", "Depot", "ZONE C",
                 "Keep Left", "Pizza", "Bank", "Car Wash", "Post Office", "Harbour", "Dock 14", "Warehouse",
                 "Exit Only", "Stadium", "Fuel", "Pier 9", "Bridge St", "Customs", "Level 3", "Hardware",
                 "Cinema", "Do Not Enter", "Bicycle Path", "Bay 21", "Clinic", "School", "Tram Stop", "80"]
PLATE_LETTERS = {"calibration": "ABCDEFGHJK", "heldout": "LMNPRSTVWXYZ"}
SIZE = (480, 640)  # H, W (multiples of 32, as the detector needs)
#: RapidOCR's DB post-processing: probability threshold, box score threshold, unclip ratio, min box side
DB_THRESH, BOX_THRESH, UNCLIP, MIN_SIDE = 0.3, 0.5, 1.6, 3
VARIANTS: dict[str, dict[str, Any]] = {
    "qdq": {}, "qdq_rr": {"reduce_range": True}, "qoperator": {"fmt": "qoperator"},
    "qdq_tensor": {"per_channel": False}, "qdq_s8s8": {"activations": "int8"},
    "qdq_entropy": {"method": "entropy"}, "qdq_percentile": {"method": "percentile"},
    "qdq_conv": {"op_types": ("Conv",)}, "qdq_conv_percentile": {"op_types": ("Conv",), "method": "percentile"},
    "qdq_nohead": {"exclude": ("ConvTranspose", "BatchNormalization", "Sigmoid")},
    "qdq_nofirst_nohead": {"exclude": ("p2o.Conv.0", "ConvTranspose", "BatchNormalization", "Sigmoid")},
    "qdq_float_act": {"exclude": ("Clip", "Div"), "fold": False},  # the Div it keeps float is folded away
    "qdq_float_stem": {"exclude": ("p2o.Conv.0", "p2o.Conv.1", "p2o.Conv.2")},
    "qdq_act_sym": {"extra": (("ActivationSymmetric", True),)},
    "qdq_range_sym": {"extra": (("CalibTensorRangeSymmetric", True),)},
    "qdq_weight_asym": {"extra": (("WeightSymmetric", False),)},
    "qdq_auto": {"auto_exclude": True},
    "qdq_percentile_auto": {"method": "percentile", "auto_exclude": True},
    "qat": {},  # the qdq path applied to the QAT fine-tuned FP32 model (bench/qat_ppocr.py), judged against FP32
}
#: where bench/qat_ppocr.py writes the fine-tuned FP32 detector (kept out of git; ``--qat-model`` to change)
QAT_MODEL = Path(__file__).resolve().parent / "results" / "ppocr_det.qat.fp32.onnx"

Box = tuple[int, int, int, int]  # x, y, w, h


@dataclass
class Frame:
    """One evaluation frame: BGR image, its ground-truth text boxes (None: a real photo without annotation) and
    the don't-care boxes (text-like things the FP32 detector finds on the frame before strings were drawn)."""

    name: str
    image: np.ndarray
    gt: list[Box] | None = None
    dontcare: list[Box] = field(default_factory=list)
    clean: np.ndarray | None = None  # the frame before strings were drawn


def detector_path() -> Path:
    try:
        import rapidocr_onnxruntime
    except ImportError:
        sys.exit("bench_int8 needs rapidocr-onnxruntime: pip install 'edgefuse[int8bench]'")
    return Path(rapidocr_onnxruntime.__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"


def _frames(patterns: list[str], limit: int, step: int = 1, start: int = 0) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        out += sorted(DATA.glob(pattern))[start:limit:step]
    return out


def _image(path: Path) -> np.ndarray:
    """A frame as BGR uint8 at the detector's input size (RapidOCR reads BGR too)."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, path
    return cv2.resize(img, (SIZE[1], SIZE[0]), interpolation=cv2.INTER_LINEAR)


def _strings(kind: str, rng: np.random.Generator) -> str:
    words = WORDS_CALIBRATION if kind == "calibration" else WORDS_HELDOUT
    if rng.random() < 0.25:  # a number plate: letters of this set's own alphabet, digits
        letters = PLATE_LETTERS[kind]
        return "".join(rng.choice(list(letters), 2)) + " " + "".join(str(d) for d in rng.integers(0, 10, 3)) + \
            " " + "".join(rng.choice(list(letters), 2))
    return str(rng.choice(words))


def render_text(img: np.ndarray, kind: str, rng: np.random.Generator, n: int = 7) -> tuple[np.ndarray, list[Box]]:
    """Up to ``n`` sign/label/plate strings drawn with cv2.putText on a copy of a real frame, not overlapping;
    returns the image and each string's ground-truth box: the tight box of its ink (x, y, w, h).

    Fonts: five Hershey faces (upright or italic), cap heights ~9-45 px, 1-3 px strokes, dark or light ink,
    drawn plain, outlined or on a contrasting plate."""
    out = img.copy()
    fonts = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
             cv2.FONT_HERSHEY_PLAIN]
    taken = np.zeros(SIZE, np.uint8)
    gt: list[Box] = []
    for _ in range(n):
        word = _strings(kind, rng)
        font = int(rng.choice(fonts)) | (cv2.FONT_ITALIC if rng.random() < 0.2 else 0)
        scale = float(rng.uniform(0.6, 1.6)) * (1.8 if font & 7 == cv2.FONT_HERSHEY_PLAIN else 1.0)
        thick = int(rng.integers(1, 4))
        (w, h), base = cv2.getTextSize(word, font, scale, thick)
        if w >= SIZE[1] - 30 or h >= SIZE[0] - 30:
            continue
        for _try in range(20):  # a place not overlapping another string (with a margin)
            x, y = int(rng.integers(8, SIZE[1] - w - 8)), int(rng.integers(h + 8, SIZE[0] - base - 8))
            if not taken[max(0, y - h - 12):y + base + 12, max(0, x - 12):x + w + 12].any():
                break
        else:
            continue
        style = int(rng.integers(0, 3))
        ink = tuple(int(c) for c in rng.integers(0, 60, 3)) if rng.random() < 0.5 else \
            tuple(int(c) for c in rng.integers(200, 256, 3))
        glyphs = np.zeros(SIZE, np.uint8)
        cv2.putText(glyphs, word, (x, y), font, scale, 255, thick, cv2.LINE_AA)
        if style == 0:  # plate: text on a contrasting filled rectangle
            cv2.rectangle(out, (x - 5, y - h - 5), (x + w + 5, y + base + 5), tuple(255 - c for c in ink), -1)
        elif style == 1:  # outlined text, readable on any background
            cv2.putText(out, word, (x, y), font, scale, tuple(255 - c for c in ink), thick + 3, cv2.LINE_AA)
        cv2.putText(out, word, (x, y), font, scale, ink, thick, cv2.LINE_AA)
        bx, by, bw, bh = cv2.boundingRect((glyphs > 64).astype(np.uint8))
        gt.append((bx, by, bw, bh))
        taken[y - h - 5:y + base + 5, x - 5:x + w + 5] = 1
    return out, gt


def _tensor(img: np.ndarray | Path) -> dict[str, np.ndarray]:
    """RapidOCR's detector pre-processing: BGR, [0, 1] scaled, mean 0.5, std 0.5, NCHW float32."""
    if isinstance(img, Path):
        img = _image(img)
    x = (img.astype(np.float32) / 255.0 - 0.5) / 0.5
    return {"x": np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)}


CALIBRATION_FRAMES = {  # glob, limit, step, start
    "radiate_tiny_foggy/data/radiate/tiny_foggy/zed_left/*.png": (50, 5, 0),
    "euroc_v101_micro/MicroEurocDataset/mav0/cam0/data/*.png": (90, 9, 0),
}
HELDOUT_FRAMES = {
    "radiate_tiny_foggy/data/radiate/tiny_foggy/zed_right/*.png": (50, 2, 1),
    "euroc_v101_micro/MicroEurocDataset/mav0/cam0/data/*.png": (95, 9, 4),
    "nuscenes_demo_sample/*.jpg": (12, 1, 0), "kitti_object_3frames/training/image_2/*.png": (12, 1, 0),
    "opencalib_*/**/*.png": (12, 1, 0), "opencalib_*/**/*.jpg": (12, 1, 0),
    "acfr_vlp16_quickstart/images/*.png": (12, 1, 0), "acfr_ouster_chessboard/*/images/*.png": (12, 1, 0),
}


def datasets(seed: int = 13, renders: int = 3, strings: int = 9,
             heldout_seed: int | None = None) -> tuple[list[Frame], list[Frame]]:
    """(calibration, held-out) frames: disjoint frames and disjoint strings.

    Calibration: 3 real text photos/scans + strings rendered on RADIATE ZED-left and every 9th EuRoC frame.
    Held-out: 6 other real text photos and the RADIATE ZED-right frame with shop signs (``real:``, no ground
    truth) + strings rendered (``rendered:``, ground truth known) on other RADIATE ZED-right frames, other
    EuRoC frames, nuScenes, KITTI, OpenCalib, ACFR frames and OpenCV's chessboard photos, ``renders`` times
    each (other strings, places, fonts: ``#k`` in the name), up to ``strings`` strings per render.
    ``heldout_seed``: draw the held-out renders from their own random stream (the calibration set stays the
    ``seed`` one), i.e. a fresh held-out sample for a model that was tuned while looking at the default one.
    """
    rng = np.random.default_rng(seed)
    calib = [Frame(f"real:{n}", _image(TEXT / n)) for n in REAL_CALIBRATION]
    for pattern, (limit, step, start) in CALIBRATION_FRAMES.items():
        for p in _frames([pattern], limit, step, start):
            img, gt = render_text(_image(p), "calibration", rng)
            calib.append(Frame(f"rendered:{p.relative_to(DATA)}", img, gt))
    signs = DATA / "radiate_tiny_foggy/data/radiate/tiny_foggy/zed_right/000002.png"
    held = [Frame(f"real:{n}", _image(TEXT / n)) for n in REAL_HELDOUT]
    held.append(Frame(f"real:{signs.relative_to(DATA)}", _image(signs)))
    paths = [p for pattern, (limit, step, start) in HELDOUT_FRAMES.items()
             for p in _frames([pattern], limit, step, start) if p != signs]
    paths += sorted(TEXT.glob("left*.jpg"))
    if heldout_seed is not None:
        rng = np.random.default_rng(heldout_seed)
    for p in paths:
        clean = _image(p)
        for k in range(renders):
            img, gt = render_text(clean, "heldout", rng, strings)
            held.append(Frame(f"rendered:{p.relative_to(DATA) if p.is_relative_to(DATA) else p.name}#{k}", img, gt,
                              clean=clean))
    return calib, held


def boxes(prob: np.ndarray, unclip: float = 0.0) -> list[Box]:
    """DB-style text boxes (x, y, w, h) of a (1, 1, H, W) probability map: contours of ``prob > DB_THRESH`` whose
    mean probability is above ``BOX_THRESH``, min side ``MIN_SIDE``; ``unclip`` > 0 grows each box by DB's
    offset (area * ratio / perimeter), as RapidOCR does before reporting it (the map marks shrunk text)."""
    p = prob[0, 0]
    mask = (p > DB_THRESH).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        x, y, w, h = cv2.boundingRect(c)
        if min(w, h) < MIN_SIDE:
            continue
        region = np.zeros_like(mask)
        cv2.drawContours(region, [c], -1, 1, thickness=-1)
        if float(p[region.astype(bool)].mean()) <= BOX_THRESH:
            continue
        if unclip > 0:
            d = round(w * h * unclip / (2.0 * (w + h)))
            x, y, w, h = max(0, x - d), max(0, y - d), w + 2 * d, h + 2 * d
            w, h = min(w, SIZE[1] - x), min(h, SIZE[0] - y)
        out.append((x, y, w, h))
    return out


def _iou(a: Box, b: Box) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def _inside(a: Box, b: Box) -> float:
    """Fraction of box a's area inside box b."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / float(max(1, a[2] * a[3]))


def match_frame(gt: list[Box], det: list[Box], dontcare: list[Box], iou: float = 0.5) -> tuple[int, int, int]:
    """ICDAR-style counts of one frame: (true positives, detections, ground-truth boxes).  Detections lying
    mostly (> 50 % of their area) in a don't-care box are dropped first; then one-to-one matching, pairs taken
    by decreasing IoU, a pair counting when its IoU >= ``iou``."""
    det = [d for d in det if not any(_inside(d, c) > 0.5 for c in dontcare)]
    pairs = sorted(((_iou(g, d), i, j) for i, g in enumerate(gt) for j, d in enumerate(det)), reverse=True)
    used_g: set[int] = set()
    used_d: set[int] = set()
    for v, i, j in pairs:
        if v < iou:
            break
        if i not in used_g and j not in used_d:
            used_g.add(i)
            used_d.add(j)
    return len(used_g), len(det), len(gt)


def detection_counts(frames: list[Frame], probs: list[np.ndarray]) -> np.ndarray:
    """(frames, 3) array of (tp, detections, gt) over the frames with ground truth."""
    return np.array([match_frame(f.gt, boxes(p, UNCLIP), f.dontcare) for f, p in zip(frames, probs, strict=True)
                     if f.gt is not None], dtype=np.int64).reshape(-1, 3)


def prh(counts: np.ndarray) -> dict[str, float]:
    """Precision, recall and hmean (F1) of summed (tp, detections, gt) counts."""
    tp, nd, ng = (int(v) for v in counts.sum(axis=0))
    p = tp / nd if nd else 0.0
    r = tp / ng if ng else 0.0
    return {"precision": p, "recall": r, "hmean": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp,
            "detections": nd, "gt_boxes": ng}


def _hmean(c: np.ndarray) -> np.ndarray:
    """hmean of summed counts along axis -2 (vectorised for the bootstrap): 2 tp / (detections + gt)."""
    s = c.sum(axis=-2)
    den = s[..., 1] + s[..., 2]
    return np.where(den > 0, 2.0 * s[..., 0] / np.maximum(den, 1), 0.0)


def bootstrap(fp32: np.ndarray, int8: np.ndarray, reps: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Paired bootstrap over frames of the hmean relative change (INT8 - FP32) / FP32: 95 % interval, std."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(fp32), (reps, len(fp32)))
    hf, hi = _hmean(fp32[idx]), _hmean(int8[idx])
    rel = (hi - hf) / np.where(hf > 0, hf, 1.0)
    return {"reps": reps, "rel_change_ci95": [float(np.percentile(rel, 2.5)), float(np.percentile(rel, 97.5))],
            "rel_change_std": float(rel.std()), "fp32_hmean_ci95": [float(np.percentile(hf, 2.5)),
                                                                     float(np.percentile(hf, 97.5))]}


def box_f1(ref: list[list[Box]], got: list[list[Box]]) -> dict[str, float]:
    """Agreement of boxes with FP32's boxes (F1 at IoU >= 0.5, greedy): the old, hypersensitive figure."""
    tp = fp = fn = 0
    for r, g in zip(ref, got, strict=True):
        used: set[int] = set()
        for box in g:
            best = max(((i, _iou(box, rb)) for i, rb in enumerate(r) if i not in used), key=lambda t: t[1],
                       default=(-1, 0.0))
            if best[1] >= 0.5:
                used.add(best[0])
                tp += 1
            else:
                fp += 1
        fn += len(r) - len(used)
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    return {"f1": f1, "tp": tp, "fp": fp, "fn": fn, "boxes_fp32": sum(len(r) for r in ref)}


def _mask_f1(ref: list[np.ndarray], got: list[np.ndarray], thresh: float = 0.3) -> float:
    tp = fp = fn = 0
    for r, g in zip(ref, got, strict=True):
        a, b = r > thresh, g > thresh
        tp, fp, fn = tp + int(np.sum(a & b)), fp + int(np.sum(~a & b)), fn + int(np.sum(a & ~b))
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _scores(ref: list[np.ndarray], got: list[np.ndarray], real: list[int]) -> dict[str, Any]:
    """Agreement with FP32 (secondary): mask F1 (all held-out frames and the real-photo subset), box F1."""
    return {"mask_f1": _mask_f1(ref, got), "mask_f1_real": _mask_f1([ref[i] for i in real], [got[i] for i in real]),
            "box": box_f1([boxes(r) for r in ref], [boxes(g) for g in got])}


def _jpeg(img: np.ndarray, quality: int = 95) -> np.ndarray:
    out = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)
    assert out is not None
    return np.asarray(out)


def _session(model: Path | str, threads: int = 0) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def _speedup_row(times: dict[str, list[float]]) -> dict[str, float]:
    """Medians of each model's times; the baseline ``fp32`` is the faster of the original and the folded FP32
    model (the folds :func:`quantize_model` applies before quantizing speed FP32 up too)."""
    row = {k: float(np.median(v)) for k, v in times.items()}
    row["fp32_original"] = row["fp32"]
    row["fp32"] = min(row["fp32"], row.get("fp32_folded", math.inf))
    row["speedup"] = row["fp32"] / row["int8"]
    row["runs"] = len(times["int8"])
    return row


def interleaved_latency(models: dict[str, Path], feeds: list[dict[str, np.ndarray]], threads: int,
                        runs: int) -> dict[str, float]:
    """Median batch-1 latency (ms) of each model (``fp32``, ``fp32_folded``, ``int8``), the runs taking turns
    (order rotated every round) so a load change on the shared machine hits all alike."""
    sessions = {k: _session(m, threads) for k, m in models.items()}
    keys = list(sessions)
    times: dict[str, list[float]] = {k: [] for k in keys}
    for s in sessions.values():
        s.run(None, feeds[0])
    for i in range(runs):
        for key in keys[i % len(keys):] + keys[:i % len(keys)]:
            t0 = time.perf_counter()
            sessions[key].run(None, feeds[i % len(feeds)])
            times[key].append((time.perf_counter() - t0) * 1e3)
    return _speedup_row(times)


def _gt_figures(held: list[Frame], fp32: np.ndarray, probs: list[np.ndarray], select: np.ndarray) -> dict[str, Any]:
    """GT task figures of a model's held-out maps against FP32's counts: all frames, bootstrap, and the two
    halves (``select``: the frames the mixed-precision search was judged on; ``test``: the others)."""
    c = detection_counts(held, probs)
    h32 = prh(fp32)["hmean"]
    out: dict[str, Any] = {"all": prh(c), "bootstrap": bootstrap(fp32, c)}
    out["all"]["rel_change"] = (out["all"]["hmean"] - h32) / h32
    for half, rows in (("select_half", select), ("test_half", ~select)):
        a, b = prh(fp32[rows])["hmean"], prh(c[rows])["hmean"]
        out[half] = {"fp32_hmean": a, "int8_hmean": b, "rel_change": (b - a) / a, "gt_boxes": int(c[rows, 2].sum())}
    return out


def mark_dontcare(held: list[Frame], fp32: Any) -> None:
    """Don't-care boxes of the rendered frames: what FP32 finds on the frame before the strings were drawn,
    away from every string (real signs, lettering in the background: not annotated, so neither a hit nor a
    false alarm)."""
    found_clean: dict[int, list[Box]] = {}
    for f in held:
        if f.clean is not None and f.gt is not None:
            clean: np.ndarray = f.clean
            if id(clean) not in found_clean:
                found_clean[id(clean)] = boxes(fp32.run(None, _tensor(clean))[0], UNCLIP)
            found = found_clean[id(clean)]
            f.dontcare = [c for c in found if not any(_inside(c, g) > 0 or _inside(g, c) > 0 for g in f.gt)]


def variant_sources(names: list[str], model: Path, qat_model: Path) -> dict[str, Path]:
    """The FP32 model each variant quantizes: the original, or for ``qat`` the fine-tuned one (skipped, saying
    how to make it, when it is missing)."""
    out = {}
    for name in names:
        if name != "qat":
            out[name] = model
        elif qat_model.is_file():
            out[name] = qat_model
        else:
            print(f"qat: {qat_model} missing; make it with `pip install -e '.[train,int8bench]'` and "
                  "`.venv/bin/python bench/qat_ppocr.py` (CPU, ~15 min)", flush=True)
    return out


def qat_fp32_figures(source: Path, held: list[Frame], heldout: list[dict[str, np.ndarray]],
                     fp32_counts: np.ndarray) -> dict[str, Any]:
    """The fine-tuned FP32 model's own hmean (not quantized) against the ORIGINAL FP32's, and its training
    record (``bench/qat_ppocr.py`` writes it beside the model)."""
    sess = _session(source)
    counts = detection_counts(held, [sess.run(None, h)[0] for h in heldout])
    gt, h32 = prh(counts), prh(fp32_counts)["hmean"]
    gt["rel_change"] = (gt["hmean"] - h32) / h32
    out: dict[str, Any] = {"model": str(source), "gt": gt, "bootstrap": bootstrap(fp32_counts, counts)}
    info = source.with_suffix(".json")
    if info.is_file():
        out["training"] = json.loads(info.read_text(encoding="utf-8"))
    ci = out["bootstrap"]["rel_change_ci95"]
    print(f"qat FP32 (fine-tuned, not quantized) hmean {gt['hmean']:.4f} ({gt['rel_change']:+.2%}, 95% CI "
          f"{ci[0]:+.2%}..{ci[1]:+.2%})", flush=True)
    return out


def _child(model: str, inputs: str, threads: int, runs: int) -> None:
    """One session alone in this process (as a pipeline runs one model): warm up, ``runs`` timed runs over the
    saved inputs, the times (ms) printed as JSON."""
    data = np.load(inputs)["x"]
    print(json.dumps(latency_times(_session(model, threads), [{"x": data[i]} for i in range(len(data))], runs)))


def isolated_latency(models: dict[str, Path], feeds: list[dict[str, np.ndarray]], rounds: int,
                     runs: int) -> dict[str, Any]:
    """Median latency (ms) with each (model, threads) session alone in its own process, the configurations
    rotating over ``rounds`` rounds so that load changes hit them alike.  Two sessions in one process (the
    interleaved figure) leave one session's spinning pool threads competing with the other's run at 2 threads,
    which a pipeline running one model never has."""
    import subprocess

    keys = [(m, t) for t in (1, 2) for m in models]
    times: dict[tuple[str, int], list[float]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "inputs.npz"
        np.savez(inputs, x=np.stack([f["x"] for f in feeds[:8]]))
        for r in range(rounds):
            for m, t in keys[r % len(keys):] + keys[:r % len(keys)]:
                out = subprocess.run([sys.executable, __file__, "--child", str(models[m]), str(inputs), str(t),
                                      str(runs)], capture_output=True, text=True, check=True)
                times[m, t] += json.loads(out.stdout.strip().splitlines()[-1])
    res: dict[str, Any] = {"method": f"one session per process, {rounds} rounds x {runs} runs, rotating order"}
    for t in (1, 2):
        res[f"threads_{t}"] = _speedup_row({m: times[m, t] for m in models})
    return res


def fold_fp32(model: Path, out: Path, heldout: list[dict[str, np.ndarray]], ref: list[np.ndarray],
              result: dict[str, Any]) -> Path | None:
    """The original detector with :func:`edgefuse.infer.fold.fold_graph` applied (what ``quantize_model``
    quantizes), written to ``out`` as the second FP32 baseline; its folds and largest output difference from
    the original on the held-out frames go to ``result["fp32_folded"]``."""
    from edgefuse.infer.fold import fold_file

    done = fold_file(model, out)
    if not done:
        return None
    sess = _session(out)
    diff = max(float(np.abs(sess.run(None, h)[0] - r).max()) for h, r in zip(heldout, ref, strict=True))
    result["fp32_folded"] = {"folds": dict(done), "max_abs_diff_vs_original": diff}
    print(f"folded FP32: {dict(done)}; largest output difference from the original {diff:.2e}", flush=True)
    return out


def main() -> int:  # noqa: PLR0915 (one linear procedure: data, FP32 floors, then each variant)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30, help="latency runs per model and thread count")
    ap.add_argument("--variants", default="qdq,qdq_percentile,qdq_auto")
    ap.add_argument("--tolerance", type=float, default=0.01, help="mixed-precision target: largest relative "
                                                                   "hmean drop")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "int8.json"))
    ap.add_argument("--renders", type=int, default=3, help="renders of held-out strings per held-out frame")
    ap.add_argument("--heldout-seed", type=int, default=None,
                    help="a fresh held-out sample: held-out renders from this seed (calibration unchanged)")
    ap.add_argument("--isolated", type=int, default=0, metavar="ROUNDS",
                    help="also measure each session alone in its own process, over ROUNDS rotating rounds")
    ap.add_argument("--qat-model", default=str(QAT_MODEL), help="the fine-tuned FP32 model the qat variant "
                                                                 "quantizes (made by bench/qat_ppocr.py)")
    args = ap.parse_args()
    import logging

    import onnxruntime as ort

    logging.getLogger().setLevel(logging.ERROR)  # ORT's quantizer warns once per trial about BatchNorm axes
    model = detector_path()
    calib, held = datasets(renders=args.renders, heldout_seed=args.heldout_seed)
    calibration = [_tensor(f.image) for f in calib]
    heldout = [_tensor(f.image) for f in held]
    real = [i for i, f in enumerate(held) if f.gt is None]
    fp32 = _session(model)
    mark_dontcare(held, fp32)
    ref = [fp32.run(None, h)[0] for h in heldout]
    gt_frames = [f for f in held if f.gt is not None]
    select = np.arange(len(gt_frames)) % 2 == 0  # the mixed-precision search sees every other rendered frame
    select_idx = [i for i, f in enumerate(held) if f.gt is not None][::2]
    fp32_counts = detection_counts(held, ref)
    fp32_gt = prh(fp32_counts)
    print(f"FP32 vs ground truth: P {fp32_gt['precision']:.4f} R {fp32_gt['recall']:.4f} hmean "
          f"{fp32_gt['hmean']:.4f} ({fp32_gt['gt_boxes']} boxes on {len(gt_frames)} frames, "
          f"{sum(len(f.dontcare) for f in held)} don't-care)", flush=True)

    def hmean_select(outputs: list[dict[str, np.ndarray]]) -> float:
        """The task metric quantize_model judges on: hmean on the selection half of the rendered frames."""
        probs = [next(iter(outputs[i].values())) for i in select_idx]
        return prh(detection_counts([held[i] for i in select_idx], probs))["hmean"]

    # the measurement itself: FP32 against FP32 (another session, 2 threads) must agree exactly; FP32 on
    # imperceptibly changed inputs (1 grey level of Gaussian noise; JPEG quality 95) is the metrics' floor
    fp32b = _session(model, 2)
    rng = np.random.default_rng(0)
    noisy = {"fp32_vs_fp32": [fp32b.run(None, h)[0] for h in heldout],
             "fp32_noise_1_grey_level": [fp32.run(None, _tensor(np.clip(
                 f.image + rng.normal(0, 1, f.image.shape), 0, 255).astype(np.uint8)))[0] for f in held],
             "fp32_jpeg_q95": [fp32.run(None, _tensor(_jpeg(f.image)))[0] for f in held]}
    floor = {}
    for k, probs in noisy.items():
        floor[k] = {"agreement": _scores(ref, probs, real), "gt": _gt_figures(held, fp32_counts, probs, select)}
        g = floor[k]["gt"]
        print(f"{k:24s} hmean {g['all']['hmean']:.4f} ({g['all']['rel_change']:+.2%})  mask F1 vs FP32 "
              f"{floor[k]['agreement']['mask_f1']:.4f}", flush=True)
    result: dict[str, Any] = {
        "model": model.name, "input": [1, 3, *SIZE],
        "postprocess": {"db_thresh": DB_THRESH, "box_thresh": BOX_THRESH, "unclip_ratio": UNCLIP,
                        "min_side": MIN_SIDE},
        "calibration": [f.name for f in calib], "heldout": [f.name for f in held],
        "heldout_renders": args.renders, "heldout_seed": args.heldout_seed,
        "task_metric": "text detection precision/recall/hmean against the ground-truth boxes of the strings "
                       "rendered on held-out frames, IoU >= 0.5, one-to-one matching, don't-care regions",
        "fp32_gt": fp32_gt, "fp32_gt_bootstrap": bootstrap(fp32_counts, fp32_counts),
        "fp32_boxes": {"all": sum(len(boxes(r)) for r in ref), "real": sum(len(boxes(ref[i])) for i in real)},
        "goal": "hmean (GT) within 1 % relative of FP32 and speedup >= 1.3 at 1 and 2 threads",
        "metric_floor": floor, "environment": environment(), "ort": ort.__version__,
        "loadavg_start": list(os.getloadavg()), "complete": False, "variants": {}}
    # the temporary models of this run in a folder of their own beside the results (two runs writing into one
    # folder must not overwrite each other's); removed at the end and on SIGINT/SIGTERM
    work = Path(tempfile.mkdtemp(prefix=".bench_int8-", dir=Path(args.out).parent))
    _WRITING.append(work)
    folded = fold_fp32(model, work / "ppocr_det.folded.fp32.onnx", heldout, ref, result)
    for name, source in variant_sources(args.variants.split(","), model, Path(args.qat_model)).items():
        spec = dict(VARIANTS[name])
        if name == "qat":
            result["qat_fp32"] = qat_fp32_figures(source, held, heldout, fp32_counts)
        # tolerance 1 for fixed variants: every model is written so that it can be scored; the goal is judged
        # here.  The mixed-precision variants search for the tolerance asked.
        tol = args.tolerance if spec.get("auto_exclude") else 1.0
        opts = QuantizeOptions(metric="mask_f1", metric_threshold=DB_THRESH, tolerance=tol, threads=(1, 2),
                               latency_runs=10, **spec)
        q_path = work / f"ppocr_det.{name}.int8.onnx"
        t0 = time.perf_counter()
        rep = quantize_model(source, calibration, heldout, q_path, options=opts, overwrite=True,
                             task_metric=hmean_select)
        entry = rep.as_dict()
        for k in ("verdict", "excluded", "latency_ms", "model", "out"):
            entry.pop(k)
        entry["verdict"], entry["excluded_nodes"], entry["seconds"] = rep.verdict, len(rep.excluded), \
            time.perf_counter() - t0
        # quantize_model's own figure (FP32 then INT8, 10 runs each, not interleaved): the only latency of a
        # refused model, which is not written
        entry["latency_ms_sequential"] = rep.latency_ms
        if not rep.written:
            entry["goal_met"] = False
            result["variants"][name] = entry
            print(f"{name:15s} {rep.verdict}; speedup (sequential) " + "  ".join(
                f"{k[8:]}t {v['speedup']:.2f}x" for k, v in rep.latency_ms.items()), flush=True)
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            continue
        int8 = _session(q_path)
        probs = [int8.run(None, h)[0] for h in heldout]
        entry["gt"] = _gt_figures(held, fp32_counts, probs, select)
        entry["agreement"] = _scores(ref, probs, real)
        entry["loadavg"] = list(os.getloadavg())
        timed = {"fp32": model, **({"fp32_folded": folded} if folded else {}), "int8": q_path}
        lat = {f"threads_{t}": interleaved_latency(timed, heldout, t, args.runs) for t in (1, 2)}
        entry["latency_ms"] = lat
        if args.isolated:
            entry["latency_ms_isolated"] = isolated_latency(timed, heldout, args.isolated, args.runs)
        q_path.unlink()
        g = entry["gt"]["all"]
        speeds = [v["speedup"] for v in lat.values()]
        if args.isolated:
            speeds += [entry["latency_ms_isolated"][f"threads_{t}"]["speedup"] for t in (1, 2)]
        entry["goal_met"] = bool(g["rel_change"] >= -0.01 and min(speeds) >= 1.3)
        result["variants"][name] = entry
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")  # survives a cut-off run
        ci = entry["gt"]["bootstrap"]["rel_change_ci95"]
        speed = "  ".join(f"{k[8:]}t {v['speedup']:.2f}x ({v['fp32']:.1f} -> {v['int8']:.1f} ms)"
                          for k, v in lat.items())
        print(f"{name:15s} hmean {g['hmean']:.4f} ({g['rel_change']:+.2%}, 95% CI {ci[0]:+.2%}..{ci[1]:+.2%}; "
              f"test half {entry['gt']['test_half']['rel_change']:+.2%})  mask F1 vs FP32 "
              f"{entry['agreement']['mask_f1']:.4f}  float nodes {len(rep.excluded)}  {speed}  "
              f"goal {'met' if entry['goal_met'] else 'not met'}", flush=True)
        if args.isolated:
            iso = entry["latency_ms_isolated"]
            print(f"{'':15s} isolated (one session per process): " + "  ".join(
                f"{t}t {iso[f'threads_{t}']['speedup']:.2f}x ({iso[f'threads_{t}']['fp32']:.1f} -> "
                f"{iso[f'threads_{t}']['int8']:.1f} ms)" for t in (1, 2)), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    result["loadavg_end"] = list(os.getloadavg())
    result["complete"] = True
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        sys.exit(0)
    unwind_on_sigterm()
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for leftover in _WRITING:
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        sys.stderr.write("bench_int8: interrupted; the results file holds the variants finished so far, if any "
                         "(complete: false)\n")
        sys.exit(130)
