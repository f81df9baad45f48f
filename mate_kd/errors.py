"""Errors that carry a message a user can act on: what is wrong and how to fix it."""


class MateKDError(Exception):
    """Base class: every refusal of bad input raises a subclass of this."""


class ConfigError(MateKDError):
    """A setting or combination of settings cannot work."""


class DataError(MateKDError):
    """A data file is missing, empty or malformed."""


class ModelError(MateKDError):
    """A model directory is missing or does not fit the task or the other models."""
