"""Object-level stages (edge types ``Detections2D``, ``Detections3D``, ``Tracks``, which
:mod:`edgefuse.objects.msgs` registers in :mod:`edgefuse.msgs.edges`).

- ``nms``: per-label NMS / Soft-NMS of one or two 2-D detection inputs.
- ``wbf``: weighted boxes fusion of up to three 2-D detection inputs (``wbf_3d`` for 3-D inputs).
- ``track``: multi-object tracker on 3-D detections (:mod:`edgefuse.objects.tracker`).

Bad input is dropped and counted, never fatal.  Each stage's ``report()`` (the runner puts it under
``stages.<name>.details`` in the replay report) gives::

    frames        sets processed
    empty_inputs  detection inputs that held no box (not an error: counted, processed as usual)
    boxes_in      boxes received, boxes_out: boxes published (track: tracks published)
    rejected      reason -> count, every known reason listed (0 when it never happened):
                  boxes: non_finite (NaN/inf coordinate, score or label), inverted (x2 < x1, y2 < y1 or
                  a negative 3-D size), zero_size, bad_covariance (track only);
                  frames (track only): out_of_order, from_future;
                  tracks (track only): diverged (filter stopped being finite), singular_innovation
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from edgefuse.errors import PipelineError
from edgefuse.objects import boxfusion as bf
from edgefuse.objects.tracker import MultiObjectTracker, TrackerConfig
from edgefuse.objects.types import DET2D_DTYPE, DET3D_DTYPE, Detections2D, Detections3D
from edgefuse.stages.base import Stage, register_stage
from edgefuse.stages.params import StageParams, param

_BOX_REASONS = ("non_finite", "inverted", "zero_size")
_TRACK_REASONS = (*_BOX_REASONS, "bad_covariance", "out_of_order", "from_future", "diverged",
                  "singular_innovation")


@dataclass(frozen=True, kw_only=True)
class NmsParams(StageParams):
    """Parameters of ``nms``."""

    method: Literal["hard", "linear", "gaussian"] = param("hard", doc="hard NMS, or Soft-NMS (linear | gaussian)")
    iou_thr: float = param(0.5, ge=0.0, le=1.0, doc="overlap above which boxes suppress each other")
    sigma: float = param(0.5, gt=0.0, le=100.0, doc="Soft-NMS gaussian width")
    score_thr: float = param(0.001, ge=0.0, le=1.0, doc="Soft-NMS: keep boxes whose decayed score > this")
    normalized: bool = param(False, doc="coordinates in [0, 1] (clipped) instead of pixels")


@dataclass(frozen=True, kw_only=True)
class WbfParams(StageParams):
    """Parameters of ``wbf``."""

    iou_thr: float = param(0.55, ge=0.0, le=1.0, doc="overlap above which boxes are fused")
    skip_box_thr: float = param(0.0, ge=0.0, le=1.0, doc="boxes scored below this are ignored")
    conf_type: Literal["avg", "max", "box_and_model_avg", "absent_model_aware_avg"] = param(
        "avg", doc="how the fused score is computed (as ensemble_boxes)")
    weights: tuple[float, ...] | None = param(None, gt=0.0, le=1e6, min_len=1, max_len=3,
                                              doc="one weight per input a, b, c (fewer: only those inputs)")
    normalized: bool = param(False, doc="coordinates in [0, 1] (clipped) instead of pixels")


@dataclass(frozen=True, kw_only=True)
class Wbf3dParams(StageParams):
    """Parameters of ``wbf_3d``."""

    iou_thr: float = param(0.3, ge=0.0, le=1.0, doc="rotated BEV overlap above which boxes are fused")
    skip_box_thr: float = param(0.0, ge=0.0, le=1.0, doc="boxes scored below this are ignored")


@dataclass(frozen=True, kw_only=True)
class TrackParams(StageParams):
    """Parameters of ``track``."""

    motion: Literal["cv", "ctrv"] = param("cv", doc="constant velocity | constant turn rate and velocity")
    filter: Literal["kf", "ekf", "ukf"] = param("kf", doc="kf (with cv) | ekf | ukf (with ctrv)")
    gate_chi2: float = param(13.8, gt=0.0, le=1e6, doc="association gate (chi-square of the innovation)")
    min_hits: int = param(3, ge=1, le=10_000, doc="hits before a track is confirmed")
    max_misses: int = param(3, ge=0, le=10_000, doc="misses before a track is dropped")
    accel_std: float = param(2.0, unit="m/s²", ge=0.0, le=1e3, doc="process noise")
    meas_std_m: float = param(0.5, unit="m", gt=0.0, le=1e3, doc="measurement noise")
    publish_coasting: bool = param(True, doc="publish confirmed tracks that missed this frame")
    max_future_ms: float = param(100.0, unit="ms", ge=0.0, le=86_400_000.0,
                                 doc="detections stamped later than the set stamp + this are rejected")

    def check(self) -> list[str]:
        """motion and filter go together: cv with kf, ctrv with ekf or ukf."""
        if (self.motion, self.filter) not in {("cv", "kf"), ("ctrv", "ekf"), ("ctrv", "ukf")}:
            return [f"motion '{self.motion}' does not go with filter '{self.filter}' (cv: kf; ctrv: ekf or ukf)"]
        return []


class _CountingStage(Stage):
    """Per-stage counters behind :meth:`report` (see the module docstring)."""

    reasons: ClassVar[tuple[str, ...]] = _BOX_REASONS

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self.rejected: Counter[str] = Counter()
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.rejected.clear()
        self.rejected.update(dict.fromkeys(self.reasons, 0))
        self.frames = 0
        self.empty_inputs = 0
        self.boxes_in = 0
        self.boxes_out = 0

    def _count_inputs(self, dets: list[Any]) -> None:
        self.frames += 1
        for d in dets:
            self.boxes_in += len(d)
            self.empty_inputs += len(d) == 0

    def report(self) -> dict[str, Any]:
        """Frames, empty inputs, boxes in / out and rejected inputs per reason."""
        return {"frames": self.frames, "empty_inputs": self.empty_inputs, "boxes_in": self.boxes_in,
                "boxes_out": self.boxes_out, "rejected": dict(self.rejected)}


def _lists2d(dets: list[Detections2D]) -> tuple[list[Any], list[Any], list[Any]]:
    return ([d.xyxy() for d in dets], [np.asarray(d.boxes["score"]) for d in dets],
            [np.asarray(d.boxes["label"]) for d in dets])


def _to_2d(stamp_ns: int, frame_id: str, r: bf.FusionResult) -> Detections2D:
    out = np.zeros(r.boxes.shape[0], DET2D_DTYPE)
    for i, k in enumerate(("x1", "y1", "x2", "y2")):
        out[k] = r.boxes[:, i]
    out["score"] = r.scores if r.decayed_scores is None else r.decayed_scores
    out["label"] = r.labels.astype(np.int32)
    out["id"] = -1
    out["cov"] = np.nan
    return Detections2D(stamp_ns, frame_id, out)


@register_stage("nms")
class NmsStage(_CountingStage):
    """Per-label NMS (``method: hard``) or Soft-NMS (``linear`` / ``gaussian``) of 2-D detections."""

    inputs: ClassVar[dict[str, str]] = {"detections": "Detections2D", "detections_b?": "Detections2D"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections2D"}
    Params = NmsParams
    params: NmsParams

    def start(self) -> None:
        z = Detections2D(0, "", np.zeros(0, DET2D_DTYPE))
        one = Detections2D(0, "", np.array([(0.1, 0.1, 0.2, 0.2, 0.9, 0, -1, np.full((2, 2), np.nan))] * 2,
                                            DET2D_DTYPE))
        self.process({"detections": one, "detections_b": z}, 0)
        self._reset_counts()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        dets = [d for d in (inputs.get("detections"), inputs.get("detections_b")) if d is not None]
        self._count_inputs(dets)
        b, s, lab = _lists2d(dets)
        p = self.params
        if p.method == "hard":
            r = bf.nms(b, s, lab, iou_thr=p.iou_thr, clip=p.normalized)
        else:
            r = bf.soft_nms(b, s, lab, method=p.method, iou_thr=p.iou_thr, sigma=p.sigma, thresh=p.score_thr,
                            clip=p.normalized)
        self.rejected.update(r.rejected)
        self.boxes_out += r.boxes.shape[0]
        return {"detections": _to_2d(stamp_ns, dets[0].frame_id, r)}


@register_stage("wbf")
class WbfStage(_CountingStage):
    """Weighted boxes fusion of two or three 2-D detectors (ensemble_boxes-compatible arithmetic)."""

    inputs: ClassVar[dict[str, str]] = {"a": "Detections2D", "b?": "Detections2D", "c?": "Detections2D"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections2D"}
    Params = WbfParams
    params: WbfParams

    def start(self) -> None:
        one = Detections2D(0, "", np.array([(0.1, 0.1, 0.2, 0.2, 0.9, 0, -1, np.full((2, 2), np.nan))] * 2,
                                            DET2D_DTYPE))
        self.process({"a": one, "b": one, "c": one}, 0)
        self._reset_counts()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        # absent optional inputs count as models with no boxes so weights keep their meaning
        self._count_inputs([d for d in (inputs.get(k) for k in ("a", "b", "c")) if d is not None])
        dets = [inputs.get(k) or Detections2D(stamp_ns, "", np.zeros(0, DET2D_DTYPE)) for k in ("a", "b", "c")]
        p = self.params
        weights = None if p.weights is None else list(p.weights)
        n = 3 if weights is None else len(weights)
        b, s, lab = _lists2d(dets[:n])
        r = bf.weighted_boxes_fusion(b, s, lab, weights=weights, iou_thr=p.iou_thr, skip_box_thr=p.skip_box_thr,
                                     conf_type=p.conf_type, clip=p.normalized)
        self.rejected.update(r.rejected)
        self.boxes_out += r.boxes.shape[0]
        return {"detections": _to_2d(stamp_ns, inputs["a"].frame_id, r)}


@register_stage("wbf_3d")
class Wbf3dStage(_CountingStage):
    """Yaw-aware weighted boxes fusion of two or three 3-D detectors (same frame)."""

    inputs: ClassVar[dict[str, str]] = {"a": "Detections3D", "b?": "Detections3D", "c?": "Detections3D"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections3D"}
    Params = Wbf3dParams
    params: Wbf3dParams

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        dets = [inputs[k] for k in ("a", "b", "c") if inputs.get(k) is not None]
        self._count_inputs(dets)
        r = bf.weighted_boxes_fusion_3d([d.array7() for d in dets], [d.boxes["score"] for d in dets],
                                        [d.boxes["label"] for d in dets], iou_thr=self.params.iou_thr,
                                        skip_box_thr=self.params.skip_box_thr)
        self.rejected.update(r.rejected)
        self.boxes_out += r.boxes.shape[0]
        out = np.zeros(r.boxes.shape[0], DET3D_DTYPE)
        for i, k in enumerate(("x", "y", "z", "l", "w", "h", "yaw")):
            out[k] = r.boxes[:, i]
        out["score"] = r.scores
        out["label"] = r.labels.astype(np.int32)
        out["id"] = -1
        out["cov"] = np.nan
        return {"detections": Detections3D(stamp_ns, dets[0].frame_id, out)}

    def start(self) -> None:
        one = Detections3D(0, "", np.array([(0, 0, 0, 4, 2, 1.5, 0.1, 0.9, 0, -1, np.full((4, 4), np.nan))] * 2,
                                            DET3D_DTYPE))
        self.process({"a": one, "b": one}, 0)
        self._reset_counts()


@register_stage("track")
class TrackStage(_CountingStage):
    """Multi-object tracking of 3-D detections; outputs confirmed (and coasting) tracks.

    ``report()`` adds ``tracks_alive`` (tracks held now, any status) and ``tracks_created``.
    """

    reasons: ClassVar[tuple[str, ...]] = _TRACK_REASONS

    inputs: ClassVar[dict[str, str]] = {"detections": "Detections3D"}
    outputs: ClassVar[dict[str, str]] = {"tracks": "Tracks"}
    Params = TrackParams
    params: TrackParams

    def __init__(self, name: str, params: Mapping[str, Any] | StageParams | None = None, rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.params
        try:
            cfg = TrackerConfig(motion=p.motion, filter=p.filter, gate_chi2=p.gate_chi2, min_hits=p.min_hits,
                                max_misses=p.max_misses, accel_std=p.accel_std, meas_std_m=p.meas_std_m,
                                publish_coasting=p.publish_coasting, max_future_ns=int(p.max_future_ms * 1e6))
            self.tracker = MultiObjectTracker(cfg)
        except Exception as exc:  # AssociationError from the config check
            raise PipelineError(f"stage '{name}': {exc}") from None
        self.rejected = self.tracker.rejected  # one counter: the tracker counts, the report shows it
        self._reset_counts()

    def start(self) -> None:
        self.tracker.warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        dets = inputs["detections"]
        self._count_inputs([dets])
        tracks = self.tracker.update(dets, now_ns=stamp_ns)
        self.boxes_out += len(tracks)
        return {"tracks": tracks}

    def report(self) -> dict[str, Any]:
        """As the other object stages, plus ``tracks_alive`` and ``tracks_created``."""
        rep = super().report()
        rep.update(tracks_alive=len(self.tracker.tracks), tracks_created=self.tracker._next_id - 1)
        return rep


__all__ = ["NmsParams", "NmsStage", "TrackParams", "TrackStage", "Wbf3dParams", "Wbf3dStage", "WbfParams",
           "WbfStage"]
