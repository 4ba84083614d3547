"""Fit the gender head on cached backbone descriptors, evaluate it, plot it."""
