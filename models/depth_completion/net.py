"""Feature-level camera + LiDAR fusion network for depth completion (small: ~0.3 M parameters).

Two encoders of the same shape, one for the RGB image and one for the sparse depth (depth / 80 m and
its validity mask), each giving features at 1/2, 1/4 and 1/8 of the input size.  At every scale the two
feature maps are fused, then a U-Net decoder upsamples to full resolution and predicts depth.

Fusion (``mode``):

- ``concat``: ``relu(conv1x1([f_img, f_depth]))``.
- ``gated``: ``f_depth + sigmoid(conv3x3([f_img, f_depth])) * conv1x1(f_img)`` — the LiDAR features
  pass through unchanged and the image adds what the gate lets through, so a blank image (night, fog,
  failed camera) can be shut out by the gate.
- ``lidar``: LiDAR-only baseline of exactly the same size: the same layers as ``concat``, but its
  "image" encoder reads (depth / 80, mask, mask) instead of the RGB image.

Output: the network does not regress depth from scratch.  Inside the graph it builds candidate depths
from the sparse input alone — normalised-convolution local means over 3, 5, 9 and 17 pixel windows and
a "nearest surface" fill (the max-pooled inverse depth over 5 pixels, IP-Basic's near-wins rule) — and
its head predicts, per pixel, softmax weights over the candidates that exist there plus a free-form
candidate (``80 * sigmoid``) and a bounded residual (``+-2 m``).  The candidates also feed the depth
encoder.  Which candidate is right at an edge (foreground or background) is what the image tells.

Input ``image`` is RGB in [0, 1] (normalised inside the network), ``sparse_depth`` in metres with 0 for
no return; output ``depth`` in metres, in (0, 80).  Height and width must be multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

MAX_DEPTH_M = 80.0
WINDOWS = (3, 5, 9, 17)
N_CAND = len(WINDOWS) + 2  # local means, nearest surface, free-form


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.stem = _conv(cin, c1)
        self.d1 = nn.Sequential(_conv(c1, c1, 2), _conv(c1, c1))
        self.d2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2))
        self.d3 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s0 = self.stem(x)
        s1 = self.d1(s0)
        s2 = self.d2(s1)
        s3 = self.d3(s2)
        return [s0, s1, s2, s3]


class Fuse(nn.Module):
    def __init__(self, c: int, mode: str) -> None:
        super().__init__()
        self.mode = mode
        if mode == "gated":
            self.gate = nn.Conv2d(2 * c, c, 3, 1, 1)
            self.proj = nn.Conv2d(c, c, 1)
        else:
            self.mix = nn.Sequential(nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))

    def forward(self, fi: torch.Tensor, fd: torch.Tensor) -> torch.Tensor:
        if self.mode == "gated":
            g = torch.sigmoid(self.gate(torch.cat([fi, fd], 1)))
            return fd + g * self.proj(fi)
        return self.mix(torch.cat([fi, fd], 1))


class DepthCompletionNet(nn.Module):
    def __init__(self, mode: str = "gated", widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        if mode not in ("concat", "gated", "lidar"):
            raise ValueError(mode)
        self.mode = mode
        c1, c2, c3 = widths
        self.img_enc = Encoder(3, widths)
        self.dep_enc = Encoder(2 + 2 * (N_CAND - 1), widths)
        self.fuse = nn.ModuleList([Fuse(c, mode) for c in (c1, c1, c2, c3)])
        self.up3 = _conv(c3 + c2, c2)
        self.up2 = _conv(c2 + c1, c1)
        self.up1 = _conv(c1 + c1, c1)
        self.head = nn.Conv2d(c1, N_CAND + 2, 3, 1, 1)  # candidate logits, free-form depth, residual
        self.register_buffer("mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor, sparse_depth: torch.Tensor) -> torch.Tensor:
        mask = (sparse_depth > 0).to(sparse_depth.dtype)
        d = sparse_depth / MAX_DEPTH_M
        cands, valids = [], []
        for k in WINDOWS:
            num = nn.functional.avg_pool2d(d * mask, k, 1, k // 2)
            den = nn.functional.avg_pool2d(mask, k, 1, k // 2)
            cands.append(num / den.clamp(min=1e-6))
            valids.append((den > 0).to(d.dtype))
        inv = nn.functional.max_pool2d(mask / (d + (1.0 - mask)), 5, 1, 2)  # 1 / depth, nearest wins
        cands.append(1.0 / inv.clamp(min=1.0 / 1.5))  # in units of MAX_DEPTH_M, at most 1.5
        valids.append((inv > 0).to(d.dtype))
        xi = torch.cat([d, mask, mask], 1) if self.mode == "lidar" else (image - self.mean) / self.std
        fi = self.img_enc(xi)
        fd = self.dep_enc(torch.cat([d, mask, *cands, *valids], 1))
        f = [fuse(a, b) for fuse, a, b in zip(self.fuse, fi, fd, strict=True)]
        x = f[3]
        x = self.up3(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), f[2]], 1))
        x = self.up2(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), f[1]], 1))
        x = self.up1(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), f[0]], 1))
        h = self.head(x)
        free = torch.sigmoid(h[:, N_CAND:N_CAND + 1])
        cand = torch.cat([*cands, free], 1)
        valid = torch.cat([*valids, torch.ones_like(free)], 1)
        w = torch.softmax(h[:, :N_CAND] - 1e4 * (1.0 - valid), dim=1)
        depth = (w * cand).sum(1, keepdim=True) * MAX_DEPTH_M + 2.0 * torch.tanh(h[:, N_CAND + 1:N_CAND + 2])
        return depth.clamp(min=0.1, max=MAX_DEPTH_M)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
