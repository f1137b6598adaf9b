"""Multi-object tracker on bird's-eye-view positions of 3-D detections.

Motion models (``motion``/``filter``):

- ``cv`` + ``kf``: constant velocity, state (x, y, vx, vy), linear Kalman filter;
- ``ctrv`` + ``ekf`` / ``ukf``: constant turn rate and velocity, state (x, y, yaw, v, yaw_rate),
  extended or unscented (Merwe sigma points) prediction.

The measurement is the detection's BEV centre (x, y), linear in every model, so the update is the
standard Kalman update (for a linear measurement the UKF update is identical to it).  The detection's
z, size and yaw are smoothed separately (exponential average; yaw modulo π toward the motion heading).
The measurement covariance is the detection's ``cov[:2, :2]`` when given, else ``meas_std_m``².

Per frame: predict all tracks to the detections' stamp → gate by squared Mahalanobis distance
(``gate_chi2``, 2 dof) within the same label → optimal assignment → update matched tracks → birth of a
tentative track per unmatched detection → unmatched tracks miss: a tentative track dies at its first
miss, a confirmed one turns ``COASTING`` and is deleted after more than ``max_misses`` misses.  A track
is ``CONFIRMED`` after ``min_hits`` hits.

Bad input (each counted in :attr:`MultiObjectTracker.rejected` by reason; the tracker stays usable):
bad boxes (see :func:`edgefuse.objects.types.sanitize_3d`), a frame older than the last one
(``out_of_order``), a frame more than ``max_future_ns`` after ``now_ns`` (``from_future``), a track
whose filter stops being finite / PSD (``diverged``, the track is dropped).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edgefuse.objects import _kf_kernels as kfk
from edgefuse.objects.association import AssociationError, assign
from edgefuse.objects.types import (
    COASTING,
    CONFIRMED,
    TENTATIVE,
    TRACK_DTYPE,
    Detections3D,
    Tracks,
    sanitize_3d,
)

F64 = npt.NDArray[np.float64]


@dataclass
class TrackerConfig:
    """Tracker parameters (see module docstring)."""

    motion: str = "cv"  # cv | ctrv
    filter: str = "kf"  # kf (cv) | ekf | ukf (ctrv)
    gate_chi2: float = 13.8  # 99.9 % for 2 dof
    min_hits: int = 3
    max_misses: int = 3
    accel_std: float = 2.0  # m/s², process noise (cv: per axis; ctrv: longitudinal)
    yaw_accel_std: float = 0.5  # rad/s², ctrv process noise
    meas_std_m: float = 0.5
    init_vel_std: float = 10.0  # m/s
    init_yaw_rate_std: float = 0.5
    size_alpha: float = 0.3  # weight of the new detection in the size / z / yaw average
    max_future_ns: int = 100_000_000
    publish_tentative: bool = False
    publish_coasting: bool = True

    def check(self) -> None:
        if (self.motion, self.filter) not in {("cv", "kf"), ("ctrv", "ekf"), ("ctrv", "ukf")}:
            raise AssociationError(
                f"unsupported motion/filter {self.motion}/{self.filter} (cv/kf, ctrv/ekf, ctrv/ukf)"
            )
        if self.gate_chi2 <= 0 or self.min_hits < 1 or self.max_misses < 0 or self.meas_std_m <= 0:
            raise AssociationError("gate_chi2 > 0, min_hits ≥ 1, max_misses ≥ 0 and meas_std_m > 0 needed")


@dataclass
class _Track:
    id: int
    label: int
    x: F64
    P: F64
    box: F64  # z, l, w, h, yaw
    score: float
    hits: int = 1
    misses: int = 0
    age: int = 1
    status: int = TENTATIVE


class MultiObjectTracker:
    """Track 3-D detections over time (see module docstring)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.cfg = config or TrackerConfig()
        self.cfg.check()
        self.tracks: list[_Track] = []
        self.rejected: Counter[str] = Counter()
        self.last_ns: int | None = None
        self.frame_id = ""
        self._next_id = 1
        n = 4 if self.cfg.motion == "cv" else 5
        self._n = n
        self._H = np.zeros((2, n))
        self._H[0, 0] = self._H[1, 1] = 1.0
        self._ws = kfk._kf_workspace(n, 2)
        self._tmp = (np.empty((n, n)), np.empty((n, n)), np.empty(n))

    # ------------------------------------------------------------------ filter pieces
    def _cv_model(self, dt: float) -> tuple[F64, F64]:
        F = np.eye(4)
        F[0, 2] = F[1, 3] = dt
        q = self.cfg.accel_std**2
        Q = np.zeros((4, 4))
        for a, b in ((0, 2), (1, 3)):
            Q[a, a] = dt**4 / 4 * q
            Q[a, b] = Q[b, a] = dt**3 / 2 * q
            Q[b, b] = dt**2 * q
        return F, Q

    def _predict(self, t: _Track, dt: float) -> None:
        if dt <= 0:
            return
        if self.cfg.motion == "cv":
            F, Q = self._cv_model(dt)
            kfk._kf_predict(t.x, t.P, F, Q, *self._tmp)
        elif self.cfg.filter == "ekf":
            kfk._ekf_ctrv_predict(t.x, t.P, dt, self.cfg.accel_std, self.cfg.yaw_accel_std)
        else:
            kfk._ukf_ctrv_predict(t.x, t.P, dt, self.cfg.accel_std, self.cfg.yaw_accel_std, 1.0, 2.0, 0.0)

    def _new_track(self, det: np.void, R: F64) -> _Track:
        c = self.cfg
        if c.motion == "cv":
            x = np.array([det["x"], det["y"], 0.0, 0.0])
            P = np.diag([R[0, 0], R[1, 1], c.init_vel_std**2, c.init_vel_std**2])
            P[:2, :2] = R
        else:
            x = np.array([det["x"], det["y"], det["yaw"], 0.0, 0.0])
            P = np.diag([R[0, 0], R[1, 1], (np.pi / 2) ** 2, c.init_vel_std**2, c.init_yaw_rate_std**2])
            P[:2, :2] = R
        box = np.array([det["z"], det["l"], det["w"], det["h"], det["yaw"]], dtype=np.float64)
        t = _Track(self._next_id, int(det["label"]), x, P, box, float(det["score"]))
        if c.min_hits <= 1:
            t.status = CONFIRMED
        self._next_id += 1
        return t

    def _meas_cov(self, det: np.void) -> F64:
        cov = np.asarray(det["cov"], dtype=np.float64)
        if np.all(np.isfinite(cov[:2, :2])):
            return np.ascontiguousarray(cov[:2, :2])
        return np.eye(2) * self.cfg.meas_std_m**2

    # ------------------------------------------------------------------ main step
    def update(self, dets: Detections3D, now_ns: int | None = None) -> Tracks:
        """Advance to ``dets.stamp_ns`` and incorporate the detections; returns the published tracks.

        A rejected frame (out of order, from the future) changes nothing and returns the current tracks.
        """
        stamp = int(dets.stamp_ns)
        if now_ns is not None and stamp > now_ns + self.cfg.max_future_ns:
            self.rejected["from_future"] += 1
            return self._publish(self.last_ns if self.last_ns is not None else stamp)
        if self.last_ns is not None and stamp < self.last_ns:
            self.rejected["out_of_order"] += 1
            return self._publish(self.last_ns)
        dt = 0.0 if self.last_ns is None else (stamp - self.last_ns) * 1e-9
        self.last_ns = stamp
        self.frame_id = dets.frame_id or self.frame_id
        boxes, _ = sanitize_3d(np.asarray(dets.boxes), self.rejected)
        alive = []
        for t in self.tracks:
            try:
                self._predict(t, dt)
            except Exception:
                t.x[:] = np.nan
            if np.all(np.isfinite(t.x)) and np.all(np.isfinite(t.P)):
                alive.append(t)
            else:
                self.rejected["diverged"] += 1
        self.tracks = alive
        n_t, n_d = len(self.tracks), boxes.shape[0]
        Rs = [self._meas_cov(boxes[j]) for j in range(n_d)]
        cost = np.full((n_t, n_d), np.inf)
        if n_t and n_d:
            z = np.stack([boxes["x"], boxes["y"]], axis=1)
            R_all = np.stack(Rs)
            for i, t in enumerate(self.tracks):
                same = boxes["label"] == t.label
                if not same.any():
                    continue
                S = t.P[:2, :2][None, :, :] + R_all
                r = z - t.x[:2]
                det_s = S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 1, 0]
                ok = same & (det_s > 0)
                # 2×2 inverse in closed form: d² = rᵀ S⁻¹ r
                d2 = (S[:, 1, 1] * r[:, 0] ** 2 - (S[:, 0, 1] + S[:, 1, 0]) * r[:, 0] * r[:, 1]
                      + S[:, 0, 0] * r[:, 1] ** 2) / np.where(ok, det_s, 1.0)
                cost[i, ok] = d2[ok]
        rows, cols, um_t, um_d = assign(cost, self.cfg.gate_chi2)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            self._correct(self.tracks[i], boxes[j], Rs[j])
        for i in um_t.tolist():
            t = self.tracks[i]
            t.misses += 1
            t.age += 1
            if t.status == TENTATIVE:
                t.misses = self.cfg.max_misses + 1
            else:
                t.status = COASTING
        self.tracks = [t for t in self.tracks if t.misses <= self.cfg.max_misses]
        for j in um_d.tolist():
            self.tracks.append(self._new_track(boxes[j], Rs[j]))
        return self._publish(stamp)

    def _correct(self, t: _Track, det: np.void, R: F64) -> None:
        z = np.array([det["x"], det["y"]])
        if not kfk._kf_update(t.x, t.P, z, self._H, R, self._ws):
            self.rejected["singular_innovation"] += 1
        t.P[:, :] = 0.5 * (t.P + t.P.T)
        a = self.cfg.size_alpha
        box = np.array([det["z"], det["l"], det["w"], det["h"]])
        t.box[:4] = (1 - a) * t.box[:4] + a * box
        # box yaw modulo π: blend on the doubled angle, then face the velocity heading when moving
        yb, yd = t.box[4], float(det["yaw"])
        c = (1 - a) * np.cos(2 * yb) + a * np.cos(2 * yd)
        s = (1 - a) * np.sin(2 * yb) + a * np.sin(2 * yd)
        t.box[4] = 0.5 * np.arctan2(s, c)
        t.score = (1 - a) * t.score + a * float(det["score"])
        t.hits += 1
        t.age += 1
        t.misses = 0
        if t.hits >= self.cfg.min_hits:
            t.status = CONFIRMED

    def _velocity(self, t: _Track) -> tuple[float, float]:
        if self.cfg.motion == "cv":
            return float(t.x[2]), float(t.x[3])
        return float(t.x[3] * np.cos(t.x[2])), float(t.x[3] * np.sin(t.x[2]))

    def _publish(self, stamp: int) -> Tracks:
        out = [t for t in self.tracks
               if (t.status != TENTATIVE or self.cfg.publish_tentative)
               and (t.status != COASTING or self.cfg.publish_coasting)]
        arr = np.zeros(len(out), TRACK_DTYPE)
        for k, t in enumerate(out):
            vx, vy = self._velocity(t)
            yaw = float(t.box[4])
            if vx * vx + vy * vy > 0.25 and np.cos(yaw - np.arctan2(vy, vx)) < 0:
                yaw = float(np.arctan2(np.sin(yaw + np.pi), np.cos(yaw + np.pi)))
            arr[k] = (t.id, t.label, t.score, t.status, t.x[0], t.x[1], t.box[0], t.box[1], t.box[2],
                      t.box[3], yaw, vx, vy, t.hits, t.misses, t.age, np.full((4, 4), np.nan))
            # (x, y, z, yaw): NaN where the model estimates nothing (z always; yaw under cv)
            cov = np.full((4, 4), np.nan)
            cov[:2, :2] = t.P[:2, :2]
            if self.cfg.motion == "ctrv":
                cov[3, 3] = t.P[2, 2]
                cov[:2, 3] = t.P[:2, 2]
                cov[3, :2] = t.P[2, :2]
            arr["cov"][k] = cov
        return Tracks(stamp, self.frame_id, arr)

    def warmup(self) -> None:
        """Compile the kernels this configuration uses (call at start)."""
        probe = MultiObjectTracker(self.cfg)
        from edgefuse.objects.types import detections_3d

        for k in range(3):
            probe.update(detections_3d(k * 100_000_000, "w", [[float(k), 0, 0, 4, 2, 1.5, 0]]))


__all__ = ["MultiObjectTracker", "TrackerConfig"]
