"""Integrations of somvq with other frameworks: PyTorch (``somvq.integrations.torch``) and dask."""
