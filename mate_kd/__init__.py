"""MATE-KD: Masked Adversarial TExt, a companion to Knowledge Distillation."""

__version__ = "0.1.0"
