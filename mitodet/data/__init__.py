"""Annotation and crop-set readers, splits and statistics (the data model is mitodet.schema)."""
