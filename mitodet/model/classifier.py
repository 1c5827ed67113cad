"""The P4 ResNet read out as one label per crop (atypical vs normal mitotic figures).

The dense network's logit map is averaged over its output grid: a 1x1 convolution of the
rotation-pooled features followed by a spatial mean is a linear layer on globally average-pooled
features, so the crop's logits are invariant to 90° rotations of the crop (for a
``valid_input_size``) and the layer layout (and so the weights) of a detector carries over.
"""

from __future__ import annotations

import torch

from mitodet.model.resnet import P4ResNet


class P4Classifier(P4ResNet):
    """``[B, 3, H, W]`` RGB in [0, 1] -> crop logits ``[B, num_classes]`` (global average pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))
