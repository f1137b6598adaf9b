"""The untrained PointPillars network's committed card follows models/CARD.md and says it is untrained; when
the build is present (``python -m models.pointpillars.export``, ``train`` extra) its cards load and match it."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefuse.infer.card import check_card, check_sha256, load_card

HERE = Path(__file__).resolve().parents[2] / "models" / "pointpillars"
CARD = HERE / "card.yaml"
BUILD = HERE / "build"


def test_committed_card_is_a_valid_card_of_an_untrained_network() -> None:
    card, problems = check_card(CARD)
    if not (BUILD / "pointpillars_kitti_untrained.onnx").is_file():
        # the only complaint allowed without the (uncommitted, 19 MB) build: the file it names is absent
        assert [p.message.split(":")[0] for p in problems] == ["model file not found"]
        return
    assert problems == [] and card is not None
    assert str(card.extra["description"]).startswith("UNTRAINED")
    assert card.extra["metric"] == {"name": "none (untrained)"}
    assert [i.name for i in card.inputs] == ["voxels", "voxel_num", "voxel_idxs"]
    assert [o.name for o in card.outputs] == ["cls_preds", "box_preds", "dir_cls_preds"]


@pytest.mark.skipif(not (BUILD / "pointpillars_kitti_untrained.onnx").is_file(),
                    reason="models/pointpillars/build absent: python -m models.pointpillars.export (train extra)")
@pytest.mark.parametrize("stem", ["pointpillars_kitti_untrained", "pointpillars_kitti_untrained.int8"])
def test_built_files_carry_cards_with_their_sha256(stem: str) -> None:
    card = load_card(BUILD / f"{stem}.yaml")
    assert card.model_path == (BUILD / f"{stem}.onnx").absolute()
    check_sha256(card)
    assert "UNTRAINED" in str(card.extra["description"])
