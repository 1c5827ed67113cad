"""mitodet: rotation-invariant mitotic-figure detection in H&E images.

Follows Lafarge & Koelzer, "Semi-supervised hard-negative mining and color
augmentation strategies", MIDOG 2022. One subpackage per stage:
data, io, stain, augment, model, train, mine, infer, evaluate, cli.
"""

__version__ = "0.1.0"
