#!/usr/bin/env python
"""Train NUWA on a mixture of tasks (T2I, T2V, V2V pre-training; S2I, S2V fine-tuning) with transformers' Trainer.

    python examples/train_nuwa.py --output-dir runs/nuwa-tiny --vqgan runs/vqgan --sketch-vqgan runs/vqgan-seg
    torchrun --standalone --nproc_per_node 2 examples/train_nuwa.py --output-dir runs/nuwa-tiny ...

Same arguments as ``nuwa-hf train``; ``--help`` lists them. See nuwa_hf/training/main.py.
"""

import sys

from nuwa_hf.training import main

if __name__ == "__main__":
    sys.exit(main())
