"""The shared building blocks: the SE layouts are one computation, and misuse is refused.

The published models' numbers are pinned by the per-model parity tests; these only check what the blocks
claim beyond them (the conv and linear SE layouts compute the same gate, so sharing them is sound).
"""

from __future__ import annotations

import pytest
import torch

from sasv.models.blocks import Res2Block, SqueezeExcite


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_and_linear_squeeze_excite_are_the_same_gate(dims: int) -> None:
    torch.manual_seed(0)
    conv = SqueezeExcite(12, 4, dims=dims).eval()
    linear = SqueezeExcite(12, 4, dims=dims, linear=True).eval()
    with torch.no_grad():
        for conv_layer, linear_layer in ((conv.se[1], linear.fc[0]), (conv.se[3], linear.fc[2])):
            linear_layer.weight.copy_(conv_layer.weight.reshape(linear_layer.weight.shape))
            linear_layer.bias.copy_(conv_layer.bias)
        x = torch.randn(3, 12, *([5] * dims))
        torch.testing.assert_close(linear(x), conv(x), rtol=1e-6, atol=1e-7)


def test_batch_norm_se_has_the_doubleroc_layout() -> None:
    keys = set(SqueezeExcite(16, 8, dims=2, batch_norm=True).state_dict())
    assert {"se.1.weight", "se.3.running_var", "se.4.weight"} <= keys


def test_blocks_refuse_impossible_arguments() -> None:
    with pytest.raises(ValueError, match="bottleneck must be positive"):
        SqueezeExcite(8, 0)
    with pytest.raises(ValueError, match="no published SE variant"):
        SqueezeExcite(8, 4, linear=True, batch_norm=True)
    with pytest.raises(ValueError, match="dims must be"):
        SqueezeExcite(8, 4, dims=3)
    with pytest.raises(ValueError, match="only in 2-D"):
        Res2Block(8, 8, 2, 4, dims=1, bias=True, first_in_stage=True)
    with pytest.raises(ValueError, match="positive width"):
        Res2Block(8, 8, 0, 4, dims=1, bias=True)
