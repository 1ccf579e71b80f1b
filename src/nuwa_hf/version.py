"""The package's version (``nuwa_hf.__version__``), in a module of its own so that the package's modules can read it
without importing the package's ``__init__``."""

__version__ = "0.1.0"
