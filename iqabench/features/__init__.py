"""Hand-crafted feature extractors shared by the no-reference metrics (NSS, gradients, LBP)."""
