"""HyperNet and TReS: the architectures (published parameter counts, forward shapes, equality
with pyiqa's modules loaded with the same weights) and TReS's ranking and self-consistency
objectives (against torch's triplet loss and hand-computed values).

The faithful builds are counted on the ``meta`` device; the equality tests build both
ResNet-50 networks with random weights (pyiqa's constructors would download: its weight loading
and timm's/torchvision's pretrained downloads are patched out) and take a few seconds.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from iqabench.models import hypernet, tres
from iqabench.models.hypernet import HyperNetConfig, HyperNetIQA
from iqabench.models.tres import TReSConfig, TReSNet, sine_position_encoding
from iqabench.train.objectives.ranking import (
    self_consistency_loss,
    tres_objective,
    triplet_ranking_loss,
)

HYPERNET_PARAMETERS = 27_375_369
TRES_PARAMETERS = 152_452_265
HYPERNET_LITE_PARAMETERS = 4_088_905
TRES_LITE_PARAMETERS = 5_223_681
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(build, config):  # noqa: ANN001, ANN201 - a constructor and its config
    with torch.device("meta"):
        return build(config)


@pytest.mark.parametrize(
    ("build", "config", "expected"),
    [
        (HyperNetIQA, hypernet.FULL, HYPERNET_PARAMETERS),
        (HyperNetIQA, hypernet.LITE, HYPERNET_LITE_PARAMETERS),
        (TReSNet, tres.FULL, TRES_PARAMETERS),
        (TReSNet, tres.LITE, TRES_LITE_PARAMETERS),
    ],
    ids=["hypernet", "hypernet-lite", "tres", "tres-lite"],
)
def test_parameter_counts(build, config, expected: int) -> None:  # noqa: ANN001
    assert count(on_meta(build, config)) == expected


def test_configs_round_trip_and_validate() -> None:
    for config in (*hypernet.CONFIGS.values(), *tres.CONFIGS.values()):
        assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="multiple of 32"):
        HyperNetConfig(name="x", crop=200)
    with pytest.raises(ValueError, match="does not split"):
        HyperNetConfig(name="x", target_widths=(100, 56, 28, 14))
    with pytest.raises(ValueError, match="multiple of 32"):
        TReSConfig(name="x", crop=100)


@pytest.mark.parametrize("build", [HyperNetIQA, TReSNet], ids=["hypernet", "tres"])
def test_lite_forward_gives_one_score_per_crop(build) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    config = hypernet.LITE if build is HyperNetIQA else tres.LITE
    model = build(config).eval()
    with torch.no_grad():
        scores = model(torch.randn(3, 3, config.crop, config.crop))
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    with pytest.raises(ValueError, match=f"{config.crop}-pixel crops"):
        model(torch.randn(1, 3, 192, 192))


def test_tres_pair_is_the_branch_of_the_mirror() -> None:
    torch.manual_seed(1)
    model = TReSNet(tres.LITE).eval()
    x = torch.randn(2, 3, 160, 160)
    with torch.no_grad():
        plain, mirrored = model.forward_pair(x)
        direct = model.branch(torch.flip(x, dims=[3]))
    torch.testing.assert_close(plain.score, model(x))
    torch.testing.assert_close(mirrored.score, direct.score)
    assert plain.tokens.shape == (2, 496, 5, 5) and plain.last_stage.shape == (2, 320, 5, 5)


def test_sine_position_encoding_values() -> None:
    encoding = sine_position_encoding(8, 3)
    assert encoding.shape == (1, 8, 3, 3)
    step = 2 * math.pi / (3 + 1e-6)
    # channel 0: sine of the row position at the lowest frequency; channel 5: cosine of the
    # column position at frequency 10000 ** (2 * 0 / 4) = 1 (odd channel of the second half).
    assert encoding[0, 0, 1, 2].item() == pytest.approx(math.sin(2 * step), abs=1e-6)
    assert encoding[0, 5, 2, 0].item() == pytest.approx(math.cos(1 * step), abs=1e-6)
    assert encoding[0, 2, 0, 1].item() == pytest.approx(math.sin(step / 100.0), abs=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sine_position_encoding(6, 3)


# --- equality with pyiqa's modules -----------------------------------------------------------


@pytest.fixture(scope="module")
def pyiqa_archs():  # noqa: ANN201
    try:
        from pyiqa.archs import hypernet_arch, tres_arch
    except Exception as exc:  # noqa: BLE001 - any import failure means: nothing to compare with
        pytest.skip(f"pyiqa is not importable ({type(exc).__name__}: {exc})")
    return hypernet_arch, tres_arch


def hypernet_key(key: str) -> str:
    """pyiqa HyperNet state-dict key -> ours."""
    renames = (
        ("base_model.", "backbone."),
        ("lda_modules.", "lda."),
        ("conv1.", "hyper_stem."),
        ("fc_w_modules.4.2.", "last_weight_generator."),
        ("fc_w_modules.", "weight_generators."),
    )
    for theirs, ours in renames:
        if key.startswith(theirs):
            return ours + key.removeprefix(theirs)
    if key.startswith("fc_b_modules."):
        index, _, rest = key.removeprefix("fc_b_modules.").split(".", 2)
        return f"bias_generators.{index}.{rest}"
    raise KeyError(key)


def tres_key(key: str) -> str:
    """pyiqa TReS state-dict key -> ours."""
    key = key.replace("transformer.encoder.", "encoder.").replace(".self_attn.", ".attention.")
    key = key.replace(".linear1.", ".expand.").replace(".linear2.", ".project.")
    for theirs, ours in (("model.", "backbone."), ("fc2.", "token_projection."), ("fc.", "head.")):
        if key.startswith(theirs):
            return ours + key.removeprefix(theirs)
    return key


def test_hypernet_equals_pyiqa(pyiqa_archs, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    hypernet_arch, _ = pyiqa_archs
    create = hypernet_arch.timm.create_model
    monkeypatch.setattr(
        hypernet_arch.timm,
        "create_model",
        lambda name, pretrained=False, **kw: create(name, pretrained=False, **kw),
    )
    torch.manual_seed(2)
    theirs = hypernet_arch.HyperNet(pretrained=False).eval()
    ours = HyperNetIQA(hypernet.FULL).eval()
    ours.load_state_dict({hypernet_key(k): v for k, v in theirs.state_dict().items()})
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        expected = theirs.forward_patch(x).reshape(-1)
        got = ours((x - IMAGENET_MEAN) / IMAGENET_STD)
    assert count(theirs) == HYPERNET_PARAMETERS
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_tres_equals_pyiqa(pyiqa_archs, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    _, tres_arch = pyiqa_archs
    resnet50 = tres_arch.models.resnet50
    monkeypatch.setattr(tres_arch.models, "resnet50", lambda weights=None: resnet50(weights=None))
    monkeypatch.setattr(tres_arch, "random_crop", lambda x, size, number: x)
    torch.manual_seed(3)
    theirs = tres_arch.TReS(pretrained=False)
    ours = TReSNet(tres.FULL).eval()
    state = theirs.state_dict()
    filters = {k: state.pop(k) for k in list(state) if k.startswith("L2pooling_")}
    ours.load_state_dict({tres_key(k): v for k, v in state.items()})
    for pool, name in zip(ours.l2pool, sorted(filters), strict=True):
        torch.testing.assert_close(pool.kernel, filters[name])
    assert count(theirs) == TRES_PARAMETERS

    # pyiqa's training forward (one random crop: the test feeds the crop itself) returns the
    # score and the self-consistency term; dropout and batch statistics are switched off
    theirs.train()
    for module in theirs.modules():
        if isinstance(module, nn.Dropout | nn.BatchNorm2d | nn.MultiheadAttention):
            module.eval()
    x = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        expected_score, expected_consistency = theirs(x)
        plain, mirrored = ours.forward_pair((x - IMAGENET_MEAN) / IMAGENET_STD)
    consistency = self_consistency_loss(
        (plain.tokens, plain.last_stage), (mirrored.tokens, mirrored.last_stage)
    )
    torch.testing.assert_close(plain.score, expected_score.reshape(-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(consistency, expected_consistency, atol=1e-5, rtol=1e-5)


# --- objectives --------------------------------------------------------------------------------


def official_triplets(pred: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """The official solver's two triplets, through torch's TripletMarginLoss (distinct labels)."""
    order = torch.argsort(label)
    pick = lambda i: pred[order[i]].reshape(1, 1)  # noqa: E731
    first = nn.TripletMarginLoss(margin=float(label[order[-1]] - label[order[1]]), p=1)
    second = nn.TripletMarginLoss(margin=float(label[order[-2]] - label[order[0]]), p=1)
    return first(pick(0), pick(1), pick(-1)) + second(pick(-1), pick(-2), pick(0))


def test_triplet_ranking_loss_matches_torch_triplet_loss() -> None:
    generator = torch.Generator().manual_seed(4)
    for _ in range(5):
        pred = torch.randn(9, generator=generator)
        label = torch.randperm(9, generator=generator).double() * 0.7
        torch.testing.assert_close(
            triplet_ranking_loss(pred, label), official_triplets(pred, label), atol=1e-6, rtol=0
        )


def test_triplet_ranking_loss_by_hand() -> None:
    mos = torch.tensor([1.0, 2.0, 3.0, 4.0])
    # margins 4 - 2 = 2 and 3 - 1 = 2; anchors 0 and 3: (2 - 3 + 2) + (2 - 3 + 2)
    assert triplet_ranking_loss(torch.tensor([0.0, 2.0, 1.0, 3.0]), mos).item() == pytest.approx(
        2.0, abs=1e-5
    )
    assert triplet_ranking_loss(torch.zeros(4), mos).item() == pytest.approx(4.0, abs=1e-5)
    # ties keep batch order: the lowest is item 0, the second lowest item 1
    tied = triplet_ranking_loss(torch.tensor([0.0, 5.0, 1.0, 1.0]), torch.tensor([1.0, 1, 2, 2]))
    assert tied.item() == pytest.approx((5 - 1 + 1) + (0 - 1 + 1), abs=1e-5)
    with pytest.raises(ValueError, match="at least two"):
        triplet_ranking_loss(torch.zeros(1), torch.zeros(1))


def test_triplet_ranking_loss_gradient_reaches_scores_only() -> None:
    scores = torch.zeros(4, requires_grad=True)
    mos = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    triplet_ranking_loss(scores, mos).backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0
    assert mos.grad is None


def test_self_consistency_loss_detaches_the_mirror() -> None:
    a = torch.tensor([[1.0, -2.0]], requires_grad=True)
    b = torch.tensor([[0.0, 0.0]], requires_grad=True)
    c = torch.tensor([3.0], requires_grad=True)
    d = torch.tensor([1.0], requires_grad=True)
    loss = self_consistency_loss((a, c), (b, d))
    assert loss.item() == pytest.approx(1.5 + 2.0)
    loss.backward()
    assert b.grad is None and d.grad is None
    torch.testing.assert_close(a.grad, torch.tensor([[0.5, -0.5]]))
    with pytest.raises(ValueError, match="same"):
        self_consistency_loss((a,), ())


def test_tres_objective_is_the_official_sum() -> None:
    generator = torch.Generator().manual_seed(5)
    pred = torch.randn(6, generator=generator, requires_grad=True)
    pred2 = torch.randn(6, generator=generator, requires_grad=True)
    mos = torch.tensor([3.0, 1.0, 4.0, 1.5, 5.0, 2.0])
    closs, closs2 = torch.tensor(0.3), torch.tensor(0.2)
    l1 = nn.L1Loss()
    trip, ftrip = official_triplets(pred, mos), official_triplets(pred2, mos)
    expected = (
        l1(pred, mos)
        + closs
        + l1(pred2, mos)
        + closs2
        + 0.5 * (l1(trip, ftrip.detach()) + l1(ftrip, trip.detach()))
        + 0.05 * (trip + ftrip)
    )
    terms = tres_objective(pred, pred2, closs, closs2, mos)
    got = terms.total
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    grad_got = torch.autograd.grad(got, (pred, pred2), retain_graph=True)
    grad_expected = torch.autograd.grad(expected, (pred, pred2))
    for g, e in zip(grad_got, grad_expected, strict=True):
        torch.testing.assert_close(g, e)
    torch.testing.assert_close(terms.ranking, trip + ftrip)
    torch.testing.assert_close(terms.consistency, closs + closs2)
    single = tres_objective(pred[:1], pred2[:1], closs, closs2, mos[:1])
    assert single.ranking.item() == 0.0 and single.total.item() == pytest.approx(
        (single.regression + closs + closs2).item()
    )
