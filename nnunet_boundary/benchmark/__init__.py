"""Boundary-aware network vs baseline nnU-Net on the same dataset, plans and splits: accuracy on
held-out test cases (single model and 5-fold ensemble with mirroring TTA), surface quality,
speed and memory. :func:`nnunet_boundary.benchmark.run.run_benchmark` ties the modules together."""
