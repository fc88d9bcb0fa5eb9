"""Warnings and errors raised by somvq."""


class SomvqWarning(UserWarning):
    """Base class of the warnings somvq raises (the test suite turns them into errors)."""


class ModelFileError(ValueError):
    """A model file is missing, corrupted, of a foreign format or of an unknown version."""


class BackendUnavailableError(RuntimeError):
    """A compute backend was asked for explicitly but cannot run here."""


class CheckpointError(ValueError):
    """A training checkpoint is corrupted, foreign, or holds something other than plain data.

    Checkpoints are read with ``torch.load(weights_only=True)``: a file that would need to
    run code to load (a pickle payload) is refused with this error, never executed.
    """
