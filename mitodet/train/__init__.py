"""Training as in the paper (issue #4): config, patch pools, balanced augmented batches, the run."""
