"""Checks that run before hours of compute: raw datasets, trained-model folders, prediction input."""
