"""Code for subprocesses that must not import nuwa_hf: what a user without the package runs against a model folder
(trust_remote_code). Prepend :data:`BLOCK_NUWA_HF` to a script given to ``python -c``."""

BLOCK_NUWA_HF = """
import importlib.abc, sys
class BlockNuwaHf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "nuwa_hf" or name.startswith("nuwa_hf."):
            raise ImportError("nuwa_hf is blocked in this check")
sys.meta_path.insert(0, BlockNuwaHf())
"""
