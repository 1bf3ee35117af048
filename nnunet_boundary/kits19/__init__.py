"""The KiTS19 data path: conversion to nnU-Net v2, CT-like phantoms around real KiTS19 label
maps, KiTS19 evaluation metrics, tumor morphometry and overlay figures.

KiTS19: Heller et al., "The KiTS19 Challenge Data", arXiv:1904.00445.
"""
