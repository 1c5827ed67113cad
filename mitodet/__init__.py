"""mitodet: rotation-invariant mitotic-figure detection in H&E images.

Follows Lafarge & Koelzer, "Semi-supervised hard-negative mining and color
augmentation strategies", MIDOG 2022. One subpackage per stage:
data, io, stain, augment, model, classify, train, mine, infer, evaluate, cli.

The Python API (``docs/api.md``)::

    import mitodet
    result = mitodet.detect("slide.svs")          # or an array with mpp=..., a PIL image, an OpenSlide
    result.summary["mitotic_figures"], result.to_pandas(), result.save("out/")

Its names load on first use, so ``import mitodet`` does not import torch.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["AtypicalClassifier", "Result", "detect", "evaluate", "load_models", "pretrained", "__version__"]

_API = {"AtypicalClassifier", "Result", "detect", "evaluate", "load_models", "pretrained"}


def __getattr__(name: str):
    if name in _API:
        from mitodet import api

        return getattr(api, name)
    raise AttributeError(f"module 'mitodet' has no attribute {name!r}")
