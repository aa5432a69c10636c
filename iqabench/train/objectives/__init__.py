"""Training objectives shared by models: pure functions of tensors, one topic per module."""
