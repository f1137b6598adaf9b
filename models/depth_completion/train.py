"""Train a depth-completion network self-supervised on real camera + LiDAR frames (CPU, a few minutes).

Self-supervision: in every sample a random 30 % of the projected LiDAR returns are removed from the
input and used as targets (L1 in metres on those held-out pixels, plus 0.1 x L1 on the kept input
points so the net does not blur them).  Augmentation: random 128 x 64 crops, horizontal flips,
brightness/contrast jitter, random input-density thinning (keep 25-100 % of the input returns, so one
net serves 16- to 64-beam LiDARs), and for the fused modes *modality drop-out*: the image is blanked
(all zeros, as a dead or blinded camera delivers) with probability 0.3.

Usage::

    .venv/bin/python -m models.depth_completion.train --mode gated --steps 600

Writes ``models/depth_completion/checkpoints/<mode>.pt`` (not committed; the ONNX export is).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from models.depth_completion.data import TRAIN_RECORDINGS, Frame, load
from models.depth_completion.net import DepthCompletionNet, n_params

HERE = Path(__file__).resolve().parent
CROP_W, CROP_H = 128, 64
HOLDOUT = 0.3
BLANK_P = 0.3


def sample(frames: list[Frame], rng: np.random.Generator, fused: bool) -> tuple[np.ndarray, ...]:
    f = frames[rng.integers(len(frames))]
    h, w = f.depth.shape
    # bias crops towards rows with LiDAR returns
    rows = np.flatnonzero((f.depth > 0).sum(1) > 0)
    lo, hi = max(0, rows.min() - CROP_H // 2), min(h - CROP_H, rows.max() - CROP_H // 2)
    y = int(rng.integers(lo, max(lo, hi) + 1)) if hi > lo else int(rng.integers(0, h - CROP_H + 1))
    x = int(rng.integers(0, w - CROP_W + 1))
    img = f.image[y:y + CROP_H, x:x + CROP_W]
    dep = f.depth[y:y + CROP_H, x:x + CROP_W]
    if rng.random() < 0.5:
        img, dep = img[:, ::-1], dep[:, ::-1]
    img = np.clip((img - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15), 0, 1)
    valid = np.flatnonzero(dep.reshape(-1) > 0)
    r = rng.random(valid.size)
    keep_frac = rng.uniform(0.25, 1.0)
    held = r < HOLDOUT
    kept = (r >= HOLDOUT) & (rng.random(valid.size) < keep_frac)
    inp = np.zeros(dep.size, np.float32)
    tgt = np.zeros(dep.size, np.float32)
    flat = dep.reshape(-1)
    inp[valid[kept]] = flat[valid[kept]]
    tgt[valid[held]] = flat[valid[held]]
    if fused and rng.random() < BLANK_P:
        img = np.zeros_like(img)
    return (np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32), inp.reshape(1, CROP_H, CROP_W),
            tgt.reshape(1, CROP_H, CROP_W))


def batch(frames: list[Frame], rng: np.random.Generator, fused: bool, n: int) -> tuple[torch.Tensor, ...]:
    items = [sample(frames, rng, fused) for _ in range(n)]
    return tuple(torch.from_numpy(np.stack(k)) for k in zip(*items, strict=True))


def train(mode: str, steps: int, seed: int = 0, batch_size: int = 8, threads: int = 2) -> dict[str, object]:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    frames = load(TRAIN_RECORDINGS)
    model = DepthCompletionNet(mode)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    fused = mode != "lidar"
    start = time.perf_counter()
    step, losses = 0, []
    while step < steps:
        frac = step / steps
        for g in opt.param_groups:
            g["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        img, inp, tgt = batch(frames, rng, fused, batch_size)
        pred = model(img, inp)
        m_t, m_i = (tgt > 0).float(), (inp > 0).float()
        loss = (torch.abs(pred - tgt) * m_t).sum() / m_t.sum().clamp(min=1) \
            + 0.1 * (torch.abs(pred - inp) * m_i).sum() / m_i.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            print(f"{mode} step {step} loss {np.mean(losses[-50:]):.3f} t={time.perf_counter() - start:.0f}s",
                  flush=True)
    out = HERE / "checkpoints"
    out.mkdir(exist_ok=True)
    torch.save(model.state_dict(), out / f"{mode}.pt")
    info = {"mode": mode, "steps": step, "seconds": round(time.perf_counter() - start, 1), "batch": batch_size,
            "params": n_params(model), "threads": threads, "final_loss": float(np.mean(losses[-100:])), "seed": seed,
            "train_recordings": list(TRAIN_RECORDINGS), "train_frames": len(frames)}
    (out / f"{mode}.json").write_text(json.dumps(info, indent=1))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=("concat", "gated", "lidar"), required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    print(train(a.mode, a.steps, a.seed, threads=a.threads))


if __name__ == "__main__":
    main()
