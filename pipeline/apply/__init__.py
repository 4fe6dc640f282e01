"""Applying a trained model: classify raw inputs, explain its decisions, export it; and
`ArrayClassifier`, which trains and applies one on arrays in memory."""
