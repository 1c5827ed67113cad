"""What inference code may assume of a network: its dense geometry and a forward pass.

The P4/plain ResNets, their folded copies and the ONNX Runtime wrapper all satisfy it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch


class DenseNet(Protocol):
    """A valid-convolution network with one output cell per ``stride`` input pixels.

    Output cell (i, j) sees input window ``[stride*i, stride*i + receptive_field)`` (same for j),
    centred on pixel ``offset + stride*i``; ``output_size(n)`` cells for an input length ``n``.
    """

    receptive_field: int
    stride: int
    offset: float

    def output_size(self, n: int) -> int: ...

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def eval(self) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[torch.nn.Parameter]: ...
