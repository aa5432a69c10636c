"""DACNN, VCRNet and SaTQA: published parameter counts, forward passes, pretraining and training
steps of the architectures, and their objectives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iqabench.data.pairs import DistortedPairs, PairConfig, Reference, collate_pairs
from iqabench.models import dacnn, satqa, vcrnet
from iqabench.models.dacnn import parameter_counts
from iqabench.train.objectives.contrastive import supervised_nt_xent
from iqabench.train.objectives.restoration import error_map, error_map_mixed_loss

SIDE = 64


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def _crops(n: int = 2, side: int = SIDE) -> torch.Tensor:
    return torch.rand(n, 3, side, side)


def _pairs(n: int = 4, target: str | None = None) -> list:
    rng = np.random.default_rng(0)
    refs = [Reference.of(f"s{i}", rng.uniform(0, 255, (80, 80))) for i in range(2)]
    pairs = DistortedPairs(refs, PairConfig(crop=SIDE, target=target), seed=0, length=n)
    return [pairs[i] for i in range(n)]


def _rgb01(images: torch.Tensor) -> torch.Tensor:
    """Collated grey pairs (0..255) as the models' 0..1 RGB input."""
    return (images / 255.0).expand(-1, 3, -1, -1)


def test_dacnn_published_count() -> None:
    with torch.device("meta"):
        model = dacnn.DACNN(dacnn.FULL)
    assert parameter_counts(model) == (14_308_236, 2_812_099)


def test_vcrnet_published_count() -> None:
    with torch.device("meta"):
        model = vcrnet.VCRNet(vcrnet.FULL)
    assert parameter_counts(model) == (16_659_282, 16_659_282)


def test_satqa_published_counts() -> None:
    with torch.device("meta"):
        model = satqa.SaTQA(satqa.FULL)
    total, trainable = parameter_counts(model)
    assert parameter_counts(model.encoder) == (29_100_200, 0)
    assert (total - 29_100_200, trainable) == (145_048_554, 58_471_682)


@pytest.mark.parametrize(
    "build",
    [
        lambda: dacnn.DACNN(dacnn.LITE),
        lambda: vcrnet.VCRNet(vcrnet.LITE),
        lambda: satqa.SaTQA(satqa.LITE),
    ],
    ids=["dacnn-lite", "vcrnet-lite", "satqa-lite"],
)
def test_lite_forward_gives_one_finite_score_per_crop(build) -> None:  # noqa: ANN001
    model = build().eval()
    with torch.no_grad():
        scores = model(_crops(3))
    assert scores.shape == (3,) and torch.isfinite(scores).all()


def test_full_dacnn_and_vcrnet_forward_at_their_crop_size() -> None:
    x = _crops(1, 224)
    with torch.no_grad():
        assert dacnn.DACNN(dacnn.FULL).eval()(x).shape == (1,)
        assert vcrnet.VCRNet(vcrnet.FULL).eval()(x).shape == (1,)


def test_vcrnet_multi_level_features_and_restored_image() -> None:
    net = vcrnet.RestorationNet(vcrnet.FULL.widths)
    with torch.no_grad():
        features, restored = net(_crops(1))
    assert [tuple(f.shape[1:]) for f in features] == [
        (512, 8, 8),
        (256, 16, 16),
        (128, 32, 32),
        (64, 64, 64),
    ]
    assert restored.shape == (1, 3, SIDE, SIDE)


def test_frozen_branches_stay_frozen_and_in_evaluation_mode() -> None:
    model = dacnn.DACNN(dacnn.LITE).train()
    assert not model.adanet.training and not model.sdanet.training and model.fc1.training
    model(_crops()).sum().backward()
    assert all(p.grad is None for p in model.adanet.parameters())
    assert all(p.grad is None for p in model.sdanet.parameters())
    assert model.fc1.weight.grad is not None
    quality = satqa.SaTQA(satqa.LITE).train()
    assert not quality.backbone.training and not quality.encoder.training


def test_a_pretraining_stage_unfreezes_its_branch_and_the_quality_stage_refreezes_it() -> None:
    model = dacnn.DACNN(dacnn.LITE)
    branch = model.unfreeze("sdanet")
    model.train()
    assert branch is model.sdanet and branch.training and not model.adanet.training
    assert all(p.requires_grad for p in branch.parameters())
    assert not any(p.requires_grad for p in model.adanet.parameters())
    assert model.refreeze() is model
    model.train()
    assert not model.sdanet.training
    assert not any(p.requires_grad for p in model.sdanet.parameters())
    with pytest.raises(ValueError, match="fc1"):
        model.unfreeze("fc1")


def test_satqa_config_checks() -> None:
    assert satqa.FULL.stage_grids == (28, 14, 7)
    with pytest.raises(ValueError, match="sum to dim"):
        satqa.SaTQAConfig("bad", dim=96)
    with pytest.raises(ValueError, match="odd"):
        satqa.SaTQAConfig("bad", grid=10)


def test_configs_round_trip_through_plain_data() -> None:
    for module in (dacnn, vcrnet, satqa):
        for config in module.CONFIGS.values():
            assert type(config).from_dict(config.to_dict()) == config


def _step(model: torch.nn.Module, loss: torch.Tensor) -> float:
    """One Adam step on ``loss``; returns the largest parameter change."""
    params = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    optimiser = torch.optim.Adam(params, lr=1e-3)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return max(float((p.detach() - b).abs().max()) for p, b in zip(params, before, strict=True))


def test_sdanet_pretraining_step_on_pairs() -> None:
    batch = collate_pairs(_pairs(target="ssim"))
    sdanet = dacnn.SDANet(dacnn.LITE).train()
    predicted = sdanet.pair_quality(_rgb01(batch.distorted), _rgb01(batch.reference))
    assert _step(sdanet, F.l1_loss(predicted, batch.targets)) > 0


def test_vcrnet_restoration_pretraining_step_on_pairs() -> None:
    batch = collate_pairs(_pairs())
    model = vcrnet.VCRNet(vcrnet.LITE).train()
    distorted, reference = _rgb01(batch.distorted), _rgb01(batch.reference)
    loss = error_map_mixed_loss(model.restore(distorted), reference, distorted)
    assert _step(model.restoration, loss) > 0


def test_satqa_encoder_pretraining_step_on_pairs() -> None:
    batch = collate_pairs(_pairs())
    encoder = satqa.SCLEncoder(satqa.LITE).train()
    views = torch.cat([_rgb01(batch.distorted), _rgb01(batch.reference)])
    labels = torch.cat([batch.labels, torch.zeros_like(batch.labels)])
    assert _step(encoder, supervised_nt_xent(encoder.embed(views), labels)) > 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: dacnn.DACNN(dacnn.LITE),
        lambda: vcrnet.VCRNet(vcrnet.LITE),
        lambda: satqa.SaTQA(satqa.LITE),
    ],
    ids=["dacnn-lite", "vcrnet-lite", "satqa-lite"],
)
def test_quality_training_step(build) -> None:  # noqa: ANN001
    model = build().train()
    loss = F.l1_loss(model(_crops(2)), torch.tensor([1.0, 5.0]))
    assert _step(model, loss) > 0


def test_supervised_nt_xent_by_hand() -> None:
    embeddings = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    t = 0.5
    # Anchors 0 and 1 have one partner each (similarity 1/t); anchor 2 has none and is left out.
    expected = np.log(np.exp(1 / t) + np.exp(0.0)) - 1 / t
    got = supervised_nt_xent(embeddings, labels, temperature=t)
    assert float(got) == pytest.approx(expected)
    scaled = supervised_nt_xent(embeddings * 7.0, labels, temperature=t)
    assert float(scaled) == pytest.approx(expected)  # cosine similarity: scale-free


def test_supervised_nt_xent_rewards_clustered_classes() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = clustered[[0, 2, 1, 3]]
    assert supervised_nt_xent(clustered, labels) < supervised_nt_xent(mixed, labels)
    with pytest.raises(ValueError, match="partner"):
        supervised_nt_xent(clustered, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="temperature"):
        supervised_nt_xent(clustered, labels, temperature=0.0)


def test_error_map_mixed_loss() -> None:
    reference = torch.rand(1, 3, 32, 32)
    distorted = reference.clone()
    distorted[..., :16, :] = (distorted[..., :16, :] + 0.3).clamp(0, 1)  # damage the top half
    emap = error_map(distorted, reference)
    assert emap.shape == (1, 1, 32, 32) and float(emap.mean()) == pytest.approx(1.0)
    assert float(emap[..., :8, :].mean()) > float(emap[..., 24:, :].mean())
    assert float(error_map_mixed_loss(reference.clone(), reference, distorted)) == pytest.approx(
        0.0, abs=1e-6
    )
    # The same pixel error costs more where the distortion damaged the image.
    error = torch.zeros_like(reference)
    top, bottom = error.clone(), error.clone()
    top[..., 2:6, 10:14] = 0.2
    bottom[..., 26:30, 10:14] = 0.2
    pixel_only = {"structural_weight": 0.0}
    top_loss = error_map_mixed_loss(reference + top, reference, distorted, **pixel_only)
    bottom_loss = error_map_mixed_loss(reference + bottom, reference, distorted, **pixel_only)
    assert top_loss > bottom_loss
    restored = reference.clone().requires_grad_(True)
    error_map_mixed_loss(restored * 0.9, reference, distorted).backward()
    assert restored.grad is not None and torch.isfinite(restored.grad).all()


@pytest.mark.parametrize("shape", [(2, 1, 64, 64), (3, 3, 100, 80), (1, 3, 8, 8)])
def test_ssim_index_equals_piq(shape: tuple[int, ...]) -> None:
    """The restoration loss's SSIM term (written so the core install needs no piq) is piq's
    single-scale SSIM on crops under 384 pixels, where piq does not downsample."""
    piq = pytest.importorskip("piq")
    from iqabench.train.objectives.restoration import ssim_index

    x = torch.rand(shape, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(shape, dtype=torch.float64)).clamp(0, 1)
    if min(shape[-2:]) >= 11:
        expected = piq.ssim(x, y, data_range=1.0)
    else:  # piq refuses images smaller than its window: the largest odd one that fits
        expected = piq.ssim(x, y, data_range=1.0, kernel_size=min(shape[-2:]) - 1)
    assert float(ssim_index(x, y)) == pytest.approx(float(expected), rel=1e-12)
    assert float(ssim_index(x, x)) == pytest.approx(1.0, rel=1e-12)
