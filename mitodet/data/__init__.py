"""Annotation and crop-set readers, splits and statistics (see schema.py for the model)."""

from mitodet.data.schema import (  # noqa: F401
    DEFAULT_MPP,
    IMPOSTER,
    MATCH_RADIUS_UM,
    MITOTIC_FIGURE,
    NEGATIVE,
    Dataset,
    ImageRecord,
    Point,
)
