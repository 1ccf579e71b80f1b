"""The attribute vocabularies shared by the built-in worlds and the scorers trained on them.

The order of every tuple is the integer each value gets in the ``datasets.ClassLabel`` columns (``"motion"``,
``"color"``, ``"position"``, ``"classes"``), so a classifier trained on one world reads the others' labels the same way.
"""

from __future__ import annotations

# GODIVA's four motions (captioned Moving MNIST); "up" means towards row 0.
MOTIONS = ("up then down", "down then up", "left then right", "right then left")

# Straight-line motions of the scene videos.
DIRECTIONS = ("left", "right", "up", "down")

# Named colours with the RGB each is drawn in. "white" first: it is the uncoloured GODIVA digit.
COLORS = ("white", "red", "green", "blue", "yellow", "magenta", "cyan")
COLOR_RGB = {
    "white": (255, 255, 255),
    "red": (235, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 255),
    "yellow": (245, 225, 40),
    "magenta": (230, 50, 230),
    "cyan": (40, 225, 235),
}

# A 3x3 grid of places for the text-to-image digits, row-major, with the (row, col) fraction of the canvas at which a
# digit's centre is put.
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
POSITION_CENTERS = {name: ((index // 3 + 1) * 0.25, (index % 3 + 1) * 0.25) for index, name in enumerate(POSITIONS)}

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
