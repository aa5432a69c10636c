"""Training deep IQA models (NestConvNeXt-IQA): crop datasets with a decode-once image cache,
the training loop with per-epoch validation, checkpoints with resume, and crop-averaged
prediction.

The pieces, each importable on its own (all need torch):

* :mod:`.data`: images resized once to ``uint8``, random training crops with flips, fixed
  evaluation crops, a fingerprint of the training data;
* :mod:`.runtime`: device and precision choice, seeding;
* :mod:`.loop`: :class:`~.loop.TrainConfig` (the reference recipe) and :func:`~.loop.train`;
* :mod:`.inference`: :func:`~.inference.predict`, the mean score over crops;
* :mod:`.checkpoint`: saving and loading checkpoints (tensors and plain data only).
"""
