"""ddep: decoder denoising pretraining benchmark suite."""
__version__ = "0.1.0"
