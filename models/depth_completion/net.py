"""Feature-level camera + LiDAR fusion network for depth completion (small: ~0.4 M parameters), laid out
for INT8 on a CPU.

Two encoders of the same shape, one for the RGB image and one for the sparse depth (depth / 80 m, its validity
mask and the candidate depths below), each giving features at 1/2, 1/4 and 1/8 of the input size (the first
convolution has stride 2: no learned layer runs at full resolution), with 32, 64 and 64 channels: multiples of
32, and enough work per layer that the int8 (VNNI) convolutions, not the fixed float candidate/blend part,
dominate the time (with 16 channels at 1/2 the INT8 model was only ~1.3x faster in CPU time). At every scale
the two feature maps are fused, then a U-Net decoder upsamples (nearest) back to 1/2 and a 1x1 head predicts,
for each of the 2 x 2 full-resolution pixels under a half-resolution one, the blend below (pixel shuffle).

Fusion (``mode``):

- ``concat``: ``relu(conv1x1([f_img, f_depth]))``.
- ``gated``: ``f_depth + sigmoid(conv3x3([f_img, f_depth])) * conv1x1(f_img)`` — the LiDAR features
  pass through unchanged and the image adds what the gate lets through, so a blank image (night, fog,
  failed camera) can be shut out by the gate.
- ``lidar``: LiDAR-only baseline of exactly the same size: the same layers as ``concat``, but its
  "image" encoder reads (depth / 80, mask, mask) instead of the RGB image.

Output: the network does not regress depth from scratch. Inside the graph it builds candidate depths from the
sparse input alone, at full resolution — normalised-convolution local means over 1 x 3 (the neighbours along
the scan line), 3 x 3, 7 x 7 and 15 x 15 windows, the nearest (IP-Basic's near-wins rule) and the farthest
return in the 3 x 3 neighbourhood — and its head predicts, per pixel, normalised exponential weights over the
candidates that exist there plus a free-form candidate (``80 * sigmoid``), and a bounded residual (``+-2 m``).
Which candidate is right at an edge (foreground or background) is what the image tells. The weights are
``exp(l) * valid / sum(exp(l) * valid)`` (a masked softmax written out: ONNX Runtime's channel-axis Softmax
transposes the whole tensor and cost as much as half of the convolutions).

Input ``image`` is RGB in [0, 1] (not normalised: the first BatchNorm does that), ``sparse_depth`` in metres with 0 for
no return; output ``depth`` in metres, in (0, 80).  Height and width must be multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

MAX_DEPTH_M = 80.0
#: (height, width) of the local-mean windows, smallest first; 1 x 3 takes the neighbours along the scan line
WINDOWS = ((1, 3), (3, 3), (7, 7), (15, 15))
N_CAND = len(WINDOWS) + 3  # local means, nearest / farthest return in 3 x 3, free-form
N_OUT = N_CAND + 2  # candidate logits, free-form depth, residual
LOGIT_MAX = 30.0
#: initial logits (head bias) of the candidates, in their order: the local means from the smallest window up
#: win where they exist, the others start low
PRIOR_LOGITS = (12.0, 8.0, 4.0, 1.0, 0.0, 0.0, -4.0)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    def __init__(self, cin: int, widths: tuple[int, int, int]) -> None:
        super().__init__()
        c1, c2, c3 = widths
        self.d1 = nn.Sequential(_conv(cin, c1, 2), _conv(c1, c1))
        self.d2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2))
        self.d3 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s1 = self.d1(x)
        s2 = self.d2(s1)
        s3 = self.d3(s2)
        return [s1, s2, s3]


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
            gated: torch.Tensor = fd + g * self.proj(fi)
            return gated
        mixed: torch.Tensor = self.mix(torch.cat([fi, fd], 1))
        return mixed


def candidates(sparse_depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(d, mask, cands, valids)``: depth / 80, its mask and the ``N_CAND - 1`` candidate depths (/ 80)
    with their validity, each ``[N, N_CAND - 1, H, W]``."""
    d = sparse_depth / MAX_DEPTH_M
    mask = torch.sign(d)  # 1 where a return, 0 elsewhere
    pool = nn.functional.avg_pool2d
    cands, valids = [], []
    for kh, kw in WINDOWS:
        den = pool(mask, (kh, kw), 1, (kh // 2, kw // 2))
        cands.append(pool(d, (kh, kw), 1, (kh // 2, kw // 2)) / (den + 1e-6))  # den >= 1 / (kh kw) if a return
        valids.append(torch.sign(den))
    inv = mask / (d + (1.0 - mask))  # 1 / depth, 0 where no return
    cands.append(1.0 / nn.functional.max_pool2d(inv, 3, 1, 1).clamp(min=1.0 / 1.5))  # / MAX_DEPTH_M, <= 1.5
    cands.append(nn.functional.max_pool2d(d, 3, 1, 1))
    valids += [valids[1], valids[1]]  # a return in the 3 x 3 window
    return d, mask, torch.cat(cands, 1), torch.cat(valids, 1)


class DepthCompletionNet(nn.Module):
    def __init__(self, mode: str = "gated", widths: tuple[int, int, int] = (32, 64, 64)) -> None:
        super().__init__()
        if mode not in ("concat", "gated", "lidar"):
            raise ValueError(mode)
        self.mode = mode
        c1, c2, c3 = widths
        self.img_enc = Encoder(3, widths)
        self.dep_enc = Encoder(N_CAND + 1, widths)
        self.fuse = nn.ModuleList([Fuse(c, mode) for c in (c1, c2, c3)])
        self.up3 = _conv(c3 + c2, c2)
        self.up2 = _conv(c2 + c1, c1)
        self.up1 = _conv(c1, c1)
        self.head = nn.Conv2d(c1, 4 * N_OUT, 1)  # pixel shuffle: 2 x 2 full-resolution pixels each
        with torch.no_grad():  # start from the cascade "smallest window with a return" (near nearest neighbour)
            self.head.weight.zero_()
            assert self.head.bias is not None
            self.head.bias.copy_(torch.tensor((*PRIOR_LOGITS, 0.0, 0.0)).repeat_interleave(4))

    def forward(self, image: torch.Tensor, sparse_depth: torch.Tensor) -> torch.Tensor:
        d, mask, cands, valids = candidates(sparse_depth)
        fi = self.img_enc(torch.cat([d, mask, mask], 1) if self.mode == "lidar" else image)
        fd = self.dep_enc(torch.cat([d, mask, cands], 1))
        f = [fuse(a, b) for fuse, a, b in zip(self.fuse, fi, fd, strict=True)]
        x = f[2]
        x = self.up3(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), f[1]], 1))
        x = self.up2(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), f[0]], 1))
        h = nn.functional.pixel_shuffle(self.head(self.up1(x)), 2)
        w = torch.exp(h[:, :N_CAND].clamp(-LOGIT_MAX, LOGIT_MAX))
        wc = w[:, :N_CAND - 1] * valids
        wf = w[:, N_CAND - 1:]  # the free-form candidate is always valid: the sum is > 0
        num = (wc * cands).sum(1, keepdim=True) + wf * torch.sigmoid(h[:, N_CAND:N_CAND + 1])
        blend = num / (wc.sum(1, keepdim=True) + wf)
        depth = blend * MAX_DEPTH_M + 2.0 * torch.tanh(h[:, N_CAND + 1:N_CAND + 2])
        return depth.clamp(min=0.1, max=MAX_DEPTH_M)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
