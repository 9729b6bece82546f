"""Public model families from pip, built from small configs with random weights (nothing is
downloaded), and the shipped bugs injected into them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], tuple[nn.Module, tuple[Any, ...]]]
    formats: tuple[str, ...]
    needs: str


class FirstTensor(nn.Module):
    """A transformers model returning its first output tensor (every exporter takes that)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids, return_dict=False)[0]


def bert() -> tuple[nn.Module, tuple[Any, ...]]:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=96,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=32,
        attn_implementation="eager",
    )
    torch.manual_seed(0)
    return FirstTensor(BertModel(config)), (torch.randint(0, 96, (2, 12)),)


def gpt2() -> tuple[nn.Module, tuple[Any, ...]]:
    from transformers import GPT2Config, GPT2Model

    config = GPT2Config(
        vocab_size=96, n_embd=32, n_layer=2, n_head=2, n_positions=32, attn_implementation="eager"
    )
    torch.manual_seed(0)
    return FirstTensor(GPT2Model(config)), (torch.randint(0, 96, (2, 12)),)


def _timm(name: str, **kwargs: Any) -> tuple[nn.Module, tuple[Any, ...]]:
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs)
    size = kwargs.get("img_size", 32)
    return model, (torch.randn(2, 3, size, size),)


def timm_vit() -> tuple[nn.Module, tuple[Any, ...]]:
    return _timm("vit_tiny_patch16_224", img_size=32, depth=2, drop_path_rate=0.1)


def timm_convnext() -> tuple[nn.Module, tuple[Any, ...]]:
    return _timm("convnext_atto", drop_path_rate=0.1)


def timm_resnet_d() -> tuple[nn.Module, tuple[Any, ...]]:
    return _timm("resnet18d")


def timm_bit() -> tuple[nn.Module, tuple[Any, ...]]:
    return _timm("resnetv2_50x1_bit")


def torchvision_stochastic_depth() -> tuple[nn.Module, tuple[Any, ...]]:
    from torchvision.models import efficientnet_b0

    torch.manual_seed(0)
    model = efficientnet_b0(num_classes=10, stochastic_depth_prob=0.2)
    return model, (torch.randn(2, 3, 32, 32),)


class FunctionalDropout(nn.Module):
    """Shipped bug: F.dropout without `training=self.training` drops in eval mode too."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Any) -> torch.Tensor:
        return F.dropout(self.model(*inputs), 0.1)


class FrozenTrain(nn.Module):
    """Shipped bug: a train() override that leaves its body in training mode."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.body = model.train()

    def train(self, mode: bool = True) -> FrozenTrain:
        self.training = mode
        return self

    def forward(self, *inputs: Any) -> torch.Tensor:
        return self.body(*inputs)


ONNX_AND_PT2 = ("onnx", "exported-program")
CLEAN = (
    Case("transformers BERT", bert, ("torchscript-trace", "exported-program"), "transformers"),
    Case("transformers GPT-2", gpt2, ("onnx", "exported-program"), "transformers"),
    Case("timm ViT drop_path", timm_vit, ONNX_AND_PT2, "timm"),
    Case("timm ConvNeXt drop_path", timm_convnext, ONNX_AND_PT2, "timm"),
    Case("timm ResNet-D", timm_resnet_d, ("onnx-legacy", "exported-program"), "timm"),
    Case("timm ResNetV2 BiT", timm_bit, ("onnx", "onnx-legacy", "exported-program"), "timm"),
    Case(
        "torchvision EfficientNet-B0 StochasticDepth",
        torchvision_stochastic_depth,
        ("onnx",),
        "torchvision",
    ),
)
# Scripted drop path keeps its random mask under `if not self.training: return x`: the
# TorchScript reader must follow only the branch an eval-mode module takes.
SCRIPTED_DROP_PATH = (
    Case("timm ViT drop_path (script)", timm_vit, ("torchscript-script",), "timm"),
    Case(
        "torchvision EfficientNet-B0 StochasticDepth (script)",
        torchvision_stochastic_depth,
        ("torchscript-script",),
        "torchvision",
    ),
)
