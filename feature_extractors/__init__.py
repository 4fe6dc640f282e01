"""Turn one raw input into a `[T, D]` float sequence. Never imports `pipeline`."""
