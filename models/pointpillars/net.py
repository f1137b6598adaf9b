"""PointPillars (KITTI, 3 classes) with the architecture of OpenPCDet's ``tools/cfgs/kitti_models/pointpillar.yaml``
and the input/output contract of its ONNX exports (NVIDIA CUDA-PointPillars style).  UNTRAINED: random
weights, for latency and INT8 speed only.

Layers (rebuilt here from the published config, no code copied):

- Pillar feature net (``PillarVFE``: ``NUM_FILTERS [64]``, ``USE_NORM``, ``USE_ABSLOTE_XYZ``,
  ``WITH_DISTANCE False``): per point ``x, y, z, i``, its offset from the pillar's point mean (3) and from
  the pillar centre (3) = 10 features, padding points zeroed, ``Linear(10, 64, bias=False)``,
  ``BatchNorm1d(eps=1e-3)``, ReLU, max over the 32 points.
- Scatter (``PointPillarScatter``) to a ``[1, 64, 496, 432]`` BEV canvas.
- 2-D backbone (``BaseBEVBackbone``: ``LAYER_NUMS [3, 5, 5]``, ``LAYER_STRIDES [2, 2, 2]``,
  ``NUM_FILTERS [64, 128, 256]``, ``UPSAMPLE_STRIDES [1, 2, 4]``, ``NUM_UPSAMPLE_FILTERS [128, 128, 128]``)
  → ``[1, 384, 248, 216]``.
- SSD anchor head (``AnchorHeadSingle``, 3 classes x 2 rotations = 6 anchors per cell, direction
  classifier with 2 bins): 1x1 convs to 18 / 42 / 12 channels, returned channel-last.

ONNX contract (inputs → outputs):

- ``voxels`` ``[N, 32, 4]`` float32: up to 32 points ``x, y, z, intensity`` per pillar (LiDAR frame),
  zero rows past the pillar's count;
- ``voxel_num`` ``[N]`` int32: points in each pillar;
- ``voxel_idxs`` ``[N, 4]`` int32: ``batch (0), z (0), y, x`` cell of each pillar;
- ``cls_preds`` ``[1, 248, 216, 18]``, ``box_preds`` ``[1, 248, 216, 42]``, ``dir_cls_preds``
  ``[1, 248, 216, 12]`` float32 (decoded by :mod:`edgefuse.objects.pillars_decode`).
"""

from __future__ import annotations

import torch
from torch import nn

POINT_RANGE = (0.0, -39.68, -3.0, 69.12, 39.68, 1.0)
VOXEL_SIZE = (0.16, 0.16, 4.0)
NX, NY = 432, 496
MAX_POINTS = 32


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class PillarVFE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(10, 64, bias=False)
        self.norm = nn.BatchNorm1d(64, eps=1e-3, momentum=0.01)

    def forward(self, voxels: torch.Tensor, voxel_num: torch.Tensor, voxel_idxs: torch.Tensor) -> torch.Tensor:
        num = voxel_num.to(torch.float32).clamp(min=1.0).view(-1, 1, 1)
        xyz = voxels[:, :, :3]
        mean = xyz.sum(dim=1, keepdim=True) / num
        f_cluster = xyz - mean
        coords = voxel_idxs.to(torch.float32)
        cx = coords[:, 3:4] * VOXEL_SIZE[0] + (VOXEL_SIZE[0] / 2 + POINT_RANGE[0])
        cy = coords[:, 2:3] * VOXEL_SIZE[1] + (VOXEL_SIZE[1] / 2 + POINT_RANGE[1])
        cz = coords[:, 1:2] * VOXEL_SIZE[2] + (VOXEL_SIZE[2] / 2 + POINT_RANGE[2])
        f_center = torch.stack([voxels[:, :, 0] - cx, voxels[:, :, 1] - cy, voxels[:, :, 2] - cz], dim=2)
        feats = torch.cat([voxels, f_cluster, f_center], dim=2)
        slot = torch.arange(MAX_POINTS, device=voxels.device).view(1, -1)
        mask = (slot < voxel_num.view(-1, 1)).to(feats.dtype).unsqueeze(2)
        x = self.linear(feats * mask)  # [N, 32, 64]
        x = self.norm(x.permute(0, 2, 1)).permute(0, 2, 1)
        x = torch.relu(x)
        return x.max(dim=1).values  # [N, 64]


class Scatter(nn.Module):
    def forward(self, pillars: torch.Tensor, voxel_idxs: torch.Tensor) -> torch.Tensor:
        idx = (voxel_idxs[:, 1] + voxel_idxs[:, 2] * NX + voxel_idxs[:, 3]).to(torch.int64)
        # A size that depends on the input makes the exporter emit ConstantOfShape, not a 55 MB constant.
        canvas = torch.zeros(64, NY * NX + 0 * idx.shape[0], dtype=pillars.dtype, device=pillars.device)
        canvas = canvas.scatter(1, idx.view(1, -1).expand(64, -1), pillars.t())
        return canvas.view(1, 64, NY, NX)


class BEVBackbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layer_nums, strides, filters = (3, 5, 5), (2, 2, 2), (64, 128, 256)
        up_strides, up_filters = (1, 2, 4), (128, 128, 128)
        self.blocks = nn.ModuleList()
        self.deblocks = nn.ModuleList()
        c_in = 64
        for n, s, c, us, uc in zip(layer_nums, strides, filters, up_strides, up_filters, strict=True):
            layers: list[nn.Module] = [nn.ZeroPad2d(1), nn.Conv2d(c_in, c, 3, s, 0, bias=False), _bn(c), nn.ReLU()]
            for _ in range(n):
                layers += [nn.Conv2d(c, c, 3, 1, 1, bias=False), _bn(c), nn.ReLU()]
            self.blocks.append(nn.Sequential(*layers))
            self.deblocks.append(nn.Sequential(nn.ConvTranspose2d(c, uc, us, us, bias=False), _bn(uc), nn.ReLU()))
            c_in = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ups = []
        for block, deblock in zip(self.blocks, self.deblocks, strict=True):
            x = block(x)
            ups.append(deblock(x))
        return torch.cat(ups, dim=1)


class PointPillars(nn.Module):
    def __init__(self, n_classes: int = 3, n_rot: int = 2, n_bins: int = 2) -> None:
        super().__init__()
        a = n_classes * n_rot
        self.vfe = PillarVFE()
        self.scatter = Scatter()
        self.backbone = BEVBackbone()
        self.conv_cls = nn.Conv2d(384, a * n_classes, 1)
        self.conv_box = nn.Conv2d(384, a * 7, 1)
        self.conv_dir_cls = nn.Conv2d(384, a * n_bins, 1)

    def forward(self, voxels: torch.Tensor, voxel_num: torch.Tensor,
                voxel_idxs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        bev = self.scatter(self.vfe(voxels, voxel_num, voxel_idxs), voxel_idxs)
        f = self.backbone(bev)
        return (self.conv_cls(f).permute(0, 2, 3, 1), self.conv_box(f).permute(0, 2, 3, 1),
                self.conv_dir_cls(f).permute(0, 2, 3, 1))
