"""RADN architecture: the published parameter counts, shapes, and the properties of its two
modules (reference-oriented deformable convolution, patch-level attention) at initialisation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from iqabench.models.radn import FULL, LITE, RADN, RADNConfig, parameter_count

#: The official RADN module (IIGROUP/RADN model/RADN.py) and its WResNet baseline.
PUBLISHED_PARAMETERS = 21_881_812
PUBLISHED_WRESNET_PARAMETERS = 14_889_410


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def patch_pairs(images: int, patches: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (images, patches, 3, 32, 32)
    reference = torch.rand(shape, generator=generator)
    distorted = (reference + 0.1 * torch.randn(shape, generator=generator)).clamp(0, 1)
    return distorted, reference


def lite(seed: int = 0, **changes) -> RADN:  # noqa: ANN003 - config fields
    torch.manual_seed(seed)
    config = RADNConfig(**{**LITE.to_dict(), **changes})
    return RADN(config).eval()


def test_faithful_build_has_the_published_parameter_counts() -> None:
    with torch.device("meta"):
        model = RADN(FULL)
    assert parameter_count(model) == PUBLISHED_PARAMETERS
    assert parameter_count(model.wresnet_modules()) == PUBLISHED_WRESNET_PARAMETERS


def test_lite_build_is_a_sixtieth_of_the_published_size() -> None:
    count = parameter_count(RADN(LITE))
    assert count == 313_804
    assert count < PUBLISHED_PARAMETERS / 60


def test_shared_branches_use_one_module_and_the_official_build_two() -> None:
    shared, separate = RADN(LITE), RADN(RADNConfig(**{**LITE.to_dict(), "shared_branches": False}))
    assert shared.deform_reference is shared.deform_distorted
    assert shared.attention_reference is shared.attention_distorted
    assert separate.deform_reference is not separate.deform_distorted
    assert parameter_count(separate) > parameter_count(shared)


def head_input(model: RADN, distorted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """What the score head receives for each patch."""
    seen: list[torch.Tensor] = []
    hook = model.score_head.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        model(distorted, reference)
    hook.remove()
    return seen[0]


def test_identical_patches_give_a_zero_difference_in_a_shared_build() -> None:
    """With shared branches ``d - r`` is a difference of one function: zero for a pristine
    pair, and then the lite heads see only zeros, whatever the content."""
    _, reference = patch_pairs(images=2, patches=4)
    seen = head_input(lite(), reference, reference)
    assert seen.shape == (2, 4, LITE.widths[-1])
    assert bool((seen == 0).all())


def test_difference_heads_read_the_scaled_difference_and_all_heads_three_terms() -> None:
    distorted, reference = patch_pairs(images=1, patches=3)
    for head_inputs, width in (("difference", LITE.widths[-1]), ("all", 3 * LITE.widths[-1])):
        seen = head_input(lite(head_inputs=head_inputs), distorted, reference)
        assert seen.shape == (1, 3, width)
    base = head_input(lite(), distorted, reference)
    doubled = head_input(lite(difference_gain=2.0 * LITE.difference_gain), distorted, reference)
    torch.testing.assert_close(doubled, 2.0 * base)
    assert bool(base.abs().sum() > 0)
    with pytest.raises(ValueError, match="head_inputs"):
        RADNConfig(name="bad", head_inputs="content")


def test_quality_scale_multiplies_the_image_score_and_travels_in_the_state_dict() -> None:
    model = lite()
    distorted, reference = patch_pairs(images=2, patches=3)
    with torch.no_grad():
        before = model(distorted, reference)
        model.quality_scale.fill_(5.0)
        after = model(distorted, reference)
    torch.testing.assert_close(after, 5.0 * before)
    assert float(model.state_dict()["quality_scale"]) == 5.0


def test_forward_gives_one_score_per_image_and_one_weight_per_patch() -> None:
    model = lite()
    distorted, reference = patch_pairs(images=2, patches=5)
    with torch.no_grad():
        scores, weights = model.patch_outputs(distorted, reference)
        image_scores = model(distorted, reference)
    assert scores.shape == weights.shape == (2, 5)
    assert image_scores.shape == (2,)
    assert bool((weights > 0).all())
    expected = (scores * weights).sum(1) / weights.sum(1)
    torch.testing.assert_close(image_scores, expected)
    assert bool((image_scores >= scores.min(1).values - 1e-6).all())
    assert bool((image_scores <= scores.max(1).values + 1e-6).all())


def test_other_patch_sizes_and_a_single_patch_work() -> None:
    model = lite(patch_size=48)
    generator = torch.Generator().manual_seed(1)
    pair = torch.rand((1, 1, 3, 48, 48), generator=generator)
    with torch.no_grad():
        assert model(pair, pair).shape == (1,)


def test_image_score_does_not_depend_on_the_order_of_its_patches() -> None:
    model = lite()
    with torch.no_grad():  # attention perturbed away from identity so that it matters
        model.attention_distorted.out.weight.normal_(0, 0.05)
    distorted, reference = patch_pairs(images=1, patches=6)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        first = model(distorted, reference)
        shuffled = model(distorted[:, order], reference[:, order])
    torch.testing.assert_close(first, shuffled)


def test_patch_attention_is_the_identity_at_initialisation() -> None:
    model = lite()
    features = torch.randn(2, 7, LITE.widths[-1])
    for attention in (model.attention_distorted, model.attention_reference):
        torch.testing.assert_close(attention(features), features)


def test_patch_attention_mixes_the_patches_of_one_image_only() -> None:
    model = lite()
    attention = model.attention_distorted
    with torch.no_grad():
        attention.out.weight.normal_(0, 0.1)
    features = torch.randn(2, 4, LITE.widths[-1])
    changed = features.clone()
    changed[0, 0] += 1.0
    with torch.no_grad():
        before, after = attention(features), attention(changed)
    assert not torch.allclose(before[0, 1:], after[0, 1:])  # same image: other patches move
    torch.testing.assert_close(before[1], after[1])  # other image: untouched


def test_offsets_come_from_the_reference_features_only() -> None:
    model = lite(zero_offsets=False)
    seen: list[torch.Tensor] = []
    model.offsets.register_forward_hook(lambda _m, _i, output: seen.append(output))
    distorted, reference = patch_pairs(images=1, patches=3)
    with torch.no_grad():
        model(distorted, reference)
        model(torch.rand_like(distorted), reference)
        model(distorted, torch.rand_like(reference))
    torch.testing.assert_close(seen[0], seen[1])
    assert not torch.allclose(seen[0], seen[2])


def test_official_initialisation_leaves_offsets_nonzero_and_lite_zeroes_them() -> None:
    distorted, reference = patch_pairs(images=1, patches=2)
    for config, zero in ((FULL, False), (LITE, True)):
        torch.manual_seed(0)
        model = RADN(config).eval()
        with torch.no_grad():
            features = model.early(reference.flatten(0, 1))
            assert bool((model.offsets(features) == 0).all()) is zero


def test_zero_offsets_make_the_deformable_convolution_a_plain_one() -> None:
    model = lite()
    features = torch.randn(3, LITE.widths[2], 8, 8)
    offsets = model.offsets(features)
    assert bool((offsets == 0).all())
    deform = model.deform_distorted
    with torch.no_grad():
        expected = F.conv2d(features, deform.weight, deform.bias, padding=1)
        torch.testing.assert_close(deform(features, offsets), expected, rtol=1e-4, atol=1e-5)


def test_gradients_reach_every_parameter() -> None:
    model = lite(zero_offsets=False)
    with torch.no_grad():
        model.attention_distorted.out.weight.normal_(0, 0.05)
        model.attention_reference.out.weight.normal_(0, 0.05)
        model.weight_head[-1].bias.fill_(1.0)  # no patch at the weight floor (a dead ReLU)
    model.train()
    distorted, reference = patch_pairs(images=2, patches=3)
    model(distorted, reference).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert missing == []


def test_config_round_trips_through_a_dict() -> None:
    assert RADNConfig.from_dict(LITE.to_dict()) == LITE
    with pytest.raises(ValueError, match="multiple of 16"):
        RADNConfig(name="bad", patch_size=40)


def test_lite_trunk_has_kaiming_initialisation_and_the_faithful_one_pytorchs_default() -> None:
    torch.manual_seed(0)
    conv = RADN(LITE).late[0].body[0]  # 64 -> 64 channels, 3x3: fan-in 576
    assert float(conv.weight.detach().std()) == pytest.approx((2 / 576) ** 0.5, rel=0.05)
    assert bool((conv.bias == 0).all())
    torch.manual_seed(0)
    default = RADN(RADNConfig(**{**LITE.to_dict(), "he_init": False})).late[0].body[0]
    assert float(default.weight.detach().std()) == pytest.approx((1 / (3 * 576)) ** 0.5, rel=0.05)
