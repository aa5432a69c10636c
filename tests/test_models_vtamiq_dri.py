"""VTAMIQ and DRI-IQA architectures: faithful parameter counts, the 6-layer truncation, seeded
and position-aligned patch sampling, forward shapes, and each loss term.

Faithful builds are made on the ``meta`` device (no memory, no arithmetic); numeric checks use
tiny modules. torch runs single-threaded (the machine is shared).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from iqabench.models import dri_iqa, vtamiq
from iqabench.models.backbones import backbone_spec
from iqabench.models.nafnet import NAFNet
from iqabench.models.vtamiq_sampling import (
    SamplingWeights,
    cut_patches,
    grid_positions,
    sample_patches,
)
from iqabench.train.objectives.contrastive import info_nce
from iqabench.train.objectives.ranking import vtamiq_rank_loss
from iqabench.train.objectives.restoration import representation_semantic_loss, restoration_l1

VTAMIQ_PARAMETERS = 57_306_274
VTAMIQ_VIT_PARAMETERS = 43_563_264
#: Measured on the faithful configuration chosen from the paper (it gives no total).
DRI_PARTS = {
    "extractor": 1_221_376,
    "momentum_extractor": 1_221_376,
    "restorer": 31_702_563,
    "backbone": 71_630_592,
    "predictor": 18_514_673,
}


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- VTAMIQ: architecture -------------------------------------------------------------------


def test_vtamiq_faithful_parameter_count():
    with torch.device("meta"):
        net = vtamiq.build_vtamiq(vtamiq.FULL)
    assert count(net) == VTAMIQ_PARAMETERS
    assert net.vit_parameters() == VTAMIQ_VIT_PARAMETERS
    assert net.pos_embed.shape == (1, 1 + 24 * 24, 768)


def test_vtamiq_keeps_the_first_six_of_twelve_layers():
    with torch.device("meta"):
        backbone = backbone_spec("vit_b16").create()
        net = vtamiq.VTAMIQNet(vtamiq.FULL, backbone)
    assert len(backbone.blocks) == 12
    assert len(net.blocks) == 6
    assert all(mine is theirs for mine, theirs in zip(net.blocks, backbone.blocks[:6], strict=True))


def tiny_vit() -> torch.nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(img_size=64, patch_size=16, embed_dim=48, depth=4, num_heads=3)


TINY = vtamiq.VTAMIQConfig(
    name="tiny", backbone="vit_b16", tokenizer="vit", dim=48, depth=2, heads=3, grid=4,
    residual_groups=1, blocks_per_group=1, reduction=4,
)  # fmt: skip


def test_vtamiq_encoder_is_the_truncated_vit_on_the_patch_grid():
    """With the image's own 4x4 grid of patches, the class token equals the ViT's (first two
    layers, then its final norm) on the whole image."""
    backbone = tiny_vit().eval()
    net = vtamiq.VTAMIQNet(TINY, backbone).eval()
    image = torch.randn(1, 3, 64, 64)
    corners = np.array([(r, c) for r in range(0, 64, 16) for c in range(0, 64, 16)])
    grid = torch.from_numpy(grid_positions(corners, (64, 64), grid=4)).long()
    with torch.no_grad():
        mine = net.encode(image, torch.from_numpy(corners)[None], grid[None])
        tokens = backbone.patch_embed(image)
        tokens = torch.cat([backbone.cls_token, tokens], dim=1) + backbone.pos_embed
        for block in backbone.blocks[:2]:
            tokens = block(tokens)
        expected = backbone.norm(tokens)[:, 0]
    assert torch.allclose(mine, expected, atol=1e-5)


def test_torch_patch_cutting_matches_numpy():
    image = np.random.default_rng(0).normal(size=(40, 50, 3))
    corners = np.array([[0, 0], [24, 34], [3, 17]])
    cut = vtamiq.cut_patches(
        torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(corners)[None]
    )
    assert np.array_equal(cut[0].permute(0, 2, 3, 1).numpy(), cut_patches(image, corners))


def test_vtamiq_lite_forward_and_identical_pairs():
    torch.manual_seed(0)
    net = vtamiq.build_vtamiq(vtamiq.LITE).eval()
    reference = torch.randn(2, 3, 64, 80)
    distorted = torch.randn(2, 3, 64, 80)
    corners = torch.stack([torch.randint(0, 49, (2, 8)), torch.randint(0, 65, (2, 8))], dim=-1)
    grid = torch.from_numpy(grid_positions(corners.numpy(), (64, 80), 24))
    with torch.no_grad():
        scores = net(reference, distorted, corners, grid)
        same = net(reference, reference, corners, grid)
    assert scores.shape == (2,)
    # identical images give a zero difference vector, so one constant score
    assert torch.allclose(same[0], same[1])
    with pytest.raises(ValueError, match="one sample"):
        net(reference, distorted, corners[:, :4], grid)


# -- VTAMIQ: patch sampling -----------------------------------------------------------------


def thermal_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A frame spanning 0..255 and a copy with noise in its bottom-right quarter only."""
    rng = np.random.default_rng(seed)
    reference = rng.uniform(0, 255, size=(96, 128))
    reference[0, :2] = 0.0, 255.0
    distorted = reference.copy()
    distorted[48:, 64:] += rng.normal(0, 40, size=(48, 64))
    return reference, np.clip(distorted, 0.0, 255.0)


def test_patch_sampling_is_seeded():
    reference, distorted = thermal_pair()

    def draw(seed: int) -> np.ndarray:
        return sample_patches(reference, distorted, 64, 24, np.random.default_rng(seed)).corners

    assert np.array_equal(draw(3), draw(3))
    assert not np.array_equal(draw(3), draw(4))


def test_patches_are_cut_at_the_same_places_in_both_images():
    reference, _ = thermal_pair()
    distorted = reference + 7.0
    sample = sample_patches(reference, distorted, 32, 24, np.random.default_rng(0))
    ref_patches = cut_patches(reference, sample.corners)
    dist_patches = cut_patches(distorted, sample.corners)
    assert ref_patches.shape == (32, 16, 16)
    assert np.allclose(dist_patches - ref_patches, 7.0)
    row, col = sample.corners[5]
    assert np.array_equal(ref_patches[5], reference[row : row + 16, col : col + 16])


def test_sampling_favours_the_difference_and_covers_the_grid():
    reference, distorted = thermal_pair()

    def share_on_the_noise(weights: SamplingWeights) -> tuple[float, np.ndarray]:
        sample = sample_patches(reference, distorted, 256, 24, np.random.default_rng(0), weights)
        overlapping = (sample.corners[:, 0] > 32) & (sample.corners[:, 1] > 48)
        return float(overlapping.mean()), sample

    uniform, _ = share_on_the_noise(SamplingWeights(difference=0.0, centre=0.0, uniform=1.0))
    guided, sample = share_on_the_noise(SamplingWeights(difference=5.0, centre=0.0, uniform=0.25))
    assert guided > uniform + 0.15  # patches touching the noisy quarter are drawn more often
    corners = sample.corners
    assert corners.min() >= 0 and corners[:, 0].max() <= 80 and corners[:, 1].max() <= 112
    assert sample.grid.min() == 0 and sample.grid.max() == 23
    # grid cells follow the corners' place in the image
    assert np.array_equal(sample.grid, grid_positions(corners, reference.shape, 24))


def test_sampling_rejects_images_smaller_than_a_patch():
    with pytest.raises(ValueError, match="smaller than one"):
        sample_patches(np.zeros((10, 40)), None, 4, 24, np.random.default_rng(0))


# -- DRI-IQA --------------------------------------------------------------------------------


def test_dri_iqa_faithful_parameter_counts():
    with torch.device("meta"):
        net = dri_iqa.build_dri_iqa(dri_iqa.FULL)
    assert net.part_parameters() == DRI_PARTS
    assert count(net) == sum(DRI_PARTS.values())


@pytest.fixture(scope="module")
def dri_lite() -> dri_iqa.DRIIQANet:
    torch.manual_seed(0)
    return dri_iqa.build_dri_iqa(dri_iqa.LITE).eval()


def test_dri_iqa_lite_forward(dri_lite):
    crop = torch.rand(2, 1, 160, 160)
    with torch.no_grad():
        out = dri_lite(crop)
    half = dri_iqa.LITE.representation_dim
    assert out.score.shape == (2,)
    assert out.restored.shape == crop.shape
    assert out.representation.degradation.shape == (2, half)
    assert out.representation.quality.shape == (2, half)
    norms = out.representation.projection.norm(dim=1)
    assert torch.allclose(norms, torch.ones(2), atol=1e-5)


def test_nafnet_keeps_any_image_size():
    net = NAFNet(channels=1, width=4, encoder_blocks=(1, 1), middle_blocks=1, decoder_blocks=(1, 1))
    image = torch.rand(1, 1, 21, 30)
    assert net(image).shape == image.shape


def test_info_nce_pulls_positives_and_pushes_negatives():
    torch.manual_seed(0)
    queue = torch.nn.functional.normalize(torch.randn(16, 8), dim=1)
    query = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    matched = info_nce(query, query, queue, temperature=0.1)
    mismatched = info_nce(query, -query, queue, temperature=0.1)
    assert matched < mismatched
    # a query orthogonal to its positive and to every negative: all logits 0, loss log(1 + K)
    basis = torch.eye(8)
    flat = info_nce(basis[:1], basis[1:2], basis[2:5], temperature=0.07)
    assert math.isclose(flat.item(), math.log(4), rel_tol=1e-6)
    # a negative equal to the query raises the loss
    harder = info_nce(basis[:1], basis[1:2], basis[[0, 3, 4]], temperature=0.07)
    assert harder > flat


def test_info_nce_checks_shapes():
    with pytest.raises(ValueError, match="negatives"):
        info_nce(torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(5, 3), 0.07)


def test_rs_loss_is_zero_for_a_perfect_restoration(dri_lite):
    reference = torch.rand(2, 1, 160, 160)
    with torch.no_grad():
        target = dri_lite.extractor(reference).degradation
        perfect = dri_lite.extractor(reference.clone()).degradation
        noisy = dri_lite.extractor(reference + 0.2 * torch.randn_like(reference)).degradation
    assert representation_semantic_loss(perfect, target).item() == 0.0
    assert representation_semantic_loss(noisy, target).item() > 0.0
    assert restoration_l1(reference.clone(), reference).item() == 0.0


def test_momentum_contrast_queue_and_update():
    torch.manual_seed(0)
    extractor = dri_iqa.DualRepresentationExtractor(1, (4, 8, 8), 4)
    contrast = dri_iqa.MomentumContrast(extractor, queue_size=5, momentum=0.5)
    keys = torch.ones(3, 4)
    contrast.enqueue(keys)
    contrast.enqueue(2 * keys)
    # the second batch fills the last two places and wraps round over the oldest key
    assert torch.equal(contrast.queue[:, 0], torch.tensor([2.0, 1.0, 1.0, 2.0, 2.0]))
    assert int(contrast.pointer) == 1
    with torch.no_grad():
        for parameter in extractor.parameters():
            parameter.add_(1.0)
    before = [p.clone() for p in contrast.key_extractor.parameters()]
    contrast.update(extractor)
    for old, new, query in zip(
        before, contrast.key_extractor.parameters(), extractor.parameters(), strict=True
    ):
        assert torch.allclose(new, 0.5 * old + 0.5 * query)
    assert not any(p.requires_grad for p in contrast.key_extractor.parameters())


def test_vtamiq_rank_loss():
    mos = torch.tensor([1.0, 2.0, 3.0])
    assert vtamiq_rank_loss(torch.tensor([0.1, 0.2, 0.4]), mos).item() == 0.0
    # one pair out of order (scores 0.5 > 0.25 though opinion 1 < 2): (0.25 / 0.5) / 3 pairs
    loss = vtamiq_rank_loss(torch.tensor([0.5, 0.25, 1.0]), mos)
    assert math.isclose(loss.item(), 0.5 / 3, rel_tol=1e-5)
    # tied opinions cost nothing, whatever the scores
    assert vtamiq_rank_loss(torch.tensor([0.9, 0.1]), torch.tensor([2.0, 2.0])).item() < 1e-5
    assert vtamiq_rank_loss(torch.tensor([0.3]), torch.tensor([1.0])).item() == 0.0
    scores = torch.tensor([0.5, 0.25, 1.0], requires_grad=True)
    vtamiq_rank_loss(scores, mos).backward()
    assert scores.grad is not None and scores.grad[0] > 0 > scores.grad[1]
