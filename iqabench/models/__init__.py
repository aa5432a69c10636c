"""Deep networks behind the DL metrics, one module per architecture, and the ImageNet
backbones they start from (:mod:`iqabench.models.backbones`); torch is needed here."""
