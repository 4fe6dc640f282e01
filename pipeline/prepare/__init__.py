"""Preparing data: raw videos and recordings become cached `[T, D]` feature folders (videos,
signal chains, fused streams, decompositions, built-in sample data)."""
