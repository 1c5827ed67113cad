"""Atypical vs normal mitotic figures: labelled crops, training, and the classifier that
``mitodet detect`` and ``mitodet classify`` run on each figure (issue #21).

- :mod:`~mitodet.classify.data`: the labelled crops at the model spacing, the split;
- :mod:`~mitodet.classify.metrics`: balanced accuracy, sensitivity, specificity, AUROC;
- :mod:`~mitodet.classify.predict`: :class:`~mitodet.classify.predict.AtypicalClassifier`;
- :mod:`~mitodet.classify.crops`: the benchmark task (crops in, calls and scores out).

Its training is a stage of :mod:`mitodet.train` (``train.atypical``, ``train.atypical_config``).
"""
