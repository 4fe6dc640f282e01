"""Applying a trained model: classify raw inputs, explain its decisions, export it."""
