"""AAMSoftmax: its loss against hand-computed references, its gradients, and that it trains."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sasv.train.losses import AAMSoftmax


def _batch(seed: int = 0, batch: int = 32, dim: int = 16, classes: int = 10):
    gen = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(batch, dim, generator=gen)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    return embeddings, labels


def _head(margin: float, easy_margin: bool = False, seed: int = 0, dim: int = 16, classes: int = 10):
    torch.manual_seed(seed)
    return AAMSoftmax(dim, classes, scale=30.0, margin=margin, easy_margin=easy_margin)


def _hand_cosine(head: AAMSoftmax, embeddings: torch.Tensor) -> torch.Tensor:
    e = embeddings.double()
    w = head.weight.detach().double()
    return (e / e.norm(dim=1, keepdim=True)) @ (w / w.norm(dim=1, keepdim=True)).T


@pytest.mark.parametrize("easy_margin", [False, True])
def test_zero_margin_is_plain_scaled_cross_entropy(easy_margin):
    embeddings, labels = _batch()
    head = _head(0.0, easy_margin)
    loss, _ = head(embeddings, labels)
    cosine = F.linear(F.normalize(embeddings), F.normalize(head.weight))
    torch.testing.assert_close(loss, F.cross_entropy(30.0 * cosine, labels))


@pytest.mark.parametrize("margin", [0.1, 0.2, 0.5])
def test_margin_matches_cos_theta_plus_m_reference(margin):
    embeddings, labels = _batch(seed=1)
    head = _head(margin)
    # A few embeddings nearly opposite their class centre, so that theta + m > pi takes the fallback.
    embeddings[:4] = -head.weight.detach()[labels[:4]] + 0.01 * embeddings[:4]
    cosine = _hand_cosine(head, embeddings)
    theta = torch.acos(cosine.clamp(-1, 1))
    target = cosine.gather(1, labels[:, None])
    target_theta = theta.gather(1, labels[:, None])
    # cos(theta + m) while theta + m <= pi, ArcFace's fallback cos(theta) - m sin(m) beyond.
    phi = torch.where(
        target_theta + margin < math.pi, torch.cos(target_theta + margin), target - margin * math.sin(margin)
    )
    assert (target_theta + margin >= math.pi).sum() == 4
    expected = F.cross_entropy(30.0 * cosine.scatter(1, labels[:, None], phi), labels)
    loss, _ = head(embeddings, labels)
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("easy_margin", [False, True])
def test_margin_makes_the_loss_larger(easy_margin):
    embeddings, labels = _batch(seed=2)
    plain, _ = _head(0.0, easy_margin)(embeddings, labels)
    margined, _ = _head(0.2, easy_margin)(embeddings, labels)  # same seed: same weight
    assert margined > plain


def test_gradient_reaches_embeddings_and_weight():
    embeddings, labels = _batch(seed=3)
    embeddings.requires_grad_(True)
    head = _head(0.2)
    loss, accuracy = head(embeddings, labels)
    loss.backward()
    assert not accuracy.requires_grad
    for grad in (embeddings.grad, head.weight.grad):
        assert grad is not None
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


def test_accuracy_is_top1_of_the_unmargined_cosines():
    embeddings, labels = _batch(seed=4, batch=40)
    head = _head(0.5)
    predicted = _hand_cosine(head, embeddings).argmax(dim=1)
    labels = torch.where(torch.arange(40) % 2 == 0, predicted, labels)  # about half right by construction
    _, accuracy = head(embeddings, labels)
    expected = sum(int(p) == int(y) for p, y in zip(predicted, labels, strict=True)) / 40
    assert 0.4 <= expected < 1.0
    assert accuracy.item() == pytest.approx(expected)


@pytest.mark.parametrize("easy_margin", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cosines_at_plus_minus_one_give_finite_loss_and_gradients(sign, margin, easy_margin):
    head = _head(margin, easy_margin, classes=4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    embeddings = (sign * head.weight.detach()[labels] * 3.0).clone().requires_grad_(True)
    loss, _ = head(embeddings, labels)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(embeddings.grad).all()
    assert torch.isfinite(head.weight.grad).all()


def test_set_margin_behaves_like_a_fresh_module():
    embeddings, labels = _batch(seed=5)
    head = _head(0.2)
    before, _ = head(embeddings, labels)
    head.set_margin(0.35)
    after, _ = head(embeddings, labels)
    fresh, _ = _head(0.35)(embeddings, labels)
    assert after != before
    torch.testing.assert_close(after, fresh, rtol=0, atol=0)
    assert (head.margin, head.cos_m, head.sin_m, head.th, head.mm) == pytest.approx(
        (0.35, math.cos(0.35), math.sin(0.35), -math.cos(0.35), 0.35 * math.sin(0.35))
    )
    assert list(head.state_dict()) == ["weight"]  # the margin comes from the schedule, not the checkpoint


def test_weight_shape_and_init():
    head = _head(0.2, dim=256, classes=300)
    assert head.weight.shape == (300, 256)
    std = math.sqrt(2.0 / (256 + 300))  # xavier-normal
    assert head.weight.std().item() == pytest.approx(std, rel=0.05)
    assert "margin=0.2" in repr(head)


def test_training_loop_separates_clustered_embeddings():
    torch.manual_seed(0)
    classes, dim, per_class = 8, 16, 32
    centres = torch.randn(classes, dim) * 2.0
    labels = torch.arange(classes).repeat_interleave(per_class)
    inputs = centres[labels] + 0.7 * torch.randn(len(labels), dim)
    encoder = torch.nn.Linear(dim, 32)
    head = AAMSoftmax(32, classes, scale=30.0, margin=0.2)
    optimizer = torch.optim.SGD([*encoder.parameters(), *head.parameters()], lr=0.05, momentum=0.9)
    first_loss = None
    for _ in range(100):
        loss, accuracy = head(encoder(inputs), labels)
        first_loss = first_loss if first_loss is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        loss, accuracy = head(encoder(inputs), labels)
    assert accuracy.item() > 0.9
    assert loss.item() < first_loss


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"num_classes": 1}, "num_classes"),
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"margin": -0.1}, "margin"),
        ({"margin": 2.0}, "margin"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(kwargs, name):
    args = {"embedding_dim": 8, "num_classes": 4, **kwargs}
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        AAMSoftmax(**args)


def test_set_margin_and_forward_validate():
    head = _head(0.2, dim=8, classes=4)
    with pytest.raises(ValueError, match="margin"):
        head.set_margin(math.pi / 2)
    assert head.margin == 0.2  # a refused margin leaves the old one in place
    with pytest.raises(ValueError, match="embeddings"):
        head(torch.randn(3, 7), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        head(torch.randn(3, 8), torch.zeros(4, dtype=torch.long))
