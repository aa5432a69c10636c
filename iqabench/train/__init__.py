"""The model-agnostic training stack of the deep metrics (see docs/deep-models.md).

The pieces, each importable on its own (all but :mod:`.inputs` need torch), none naming a model:

* :mod:`.inputs`: :class:`~.inputs.InputSpec` (channels, resize, crop, flips, depth,
  normalisation), preparation of an image once, normalisation on the device;
* :mod:`.images`: the decode-once, bounded on-disk cache of prepared images and the image sources
  the datasets read;
* :mod:`.samples`: samplers (random crops, aligned for full-reference pairs) and the training and
  evaluation datasets;
* :mod:`.recipe`: optimisers, parameter groups, schedules, objectives, recipes and stages;
* :mod:`.trainer`: :func:`~.trainer.train_network`, stages with validated model selection,
  checkpoints every epoch with resume, per-epoch metrics, progress;
* :mod:`.inference`: :func:`~.inference.predict`, the mean score over evaluation samples;
* :mod:`.checkpoint`: the one checkpoint format (tensors and plain data only);
* :mod:`.runtime`: device and precision choice, seeding;
* :mod:`.experiment`: one split-train-select-test experiment (``iqabench train``).

Loss functions of particular models live in :mod:`.objectives` as pure functions of tensors.
"""
