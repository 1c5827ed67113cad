"""Warm-start a wider network from a trained narrower one of the same depth (Net2Net-style).

Every tensor of the narrow network is copied into the leading slice of the wide one. Weights
that READ a new field are zeroed, so the new fields change nothing at first: the wide network
computes exactly the narrow one's logits (checked in tests) and training grows the new fields
from there. This is how a larger configuration is compared with ``fast`` at equal compute
without throwing away the minutes ``fast`` already trained for (issue #17, capacity).
"""

from __future__ import annotations

from mitodet.model.resnet import ResNet


def widen_into(narrow: ResNet, wide: ResNet) -> ResNet:
    """Load ``narrow``'s weights into ``wide`` (same layers, each at least as wide); returns ``wide``.

    Raises ``ValueError`` when the two do not have the same tensors (e.g. a different depth, or a
    width change that adds a skip projection the narrow network lacks) or one is narrower.
    """
    src, dst = narrow.state_dict(), wide.state_dict()
    if src.keys() != dst.keys():
        extra = sorted(set(src) ^ set(dst))[:3]
        raise ValueError(f"cannot widen {narrow.config} into {wide.config}: different layers ({', '.join(extra)})")
    out = {}
    for key, big in dst.items():
        small = src[key]
        if small.dim() != big.dim() or any(s > b for s, b in zip(small.shape, big.shape, strict=True)):
            raise ValueError(f"cannot widen {key}: {tuple(small.shape)} does not fit in {tuple(big.shape)}")
        t = big.clone()
        if t.dim() >= 2:  # a convolution [out, in, ...]: new inputs are read with weight 0
            t[:, small.shape[1] :] = 0
        t[tuple(slice(0, n) for n in small.shape)] = small
        out[key] = t
    wide.load_state_dict(out)
    return wide
