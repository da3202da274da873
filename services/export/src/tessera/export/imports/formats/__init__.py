"""Readers of annotation files, one module per format."""
