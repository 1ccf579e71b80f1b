"""Plain Moving MNIST: digits stay on the canvas, move at the requested speed and bounce off the borders."""

import numpy as np
import pytest

from nuwa_hf.data import moving_mnist


def test_bouncing_digits_are_drawn_where_their_tracks_say(world_cache):
    ds = moving_mnist("test", 6, seed=2, image_size=64, num_frames=20, num_digits=2, speed_range=(0.1, 0.1))
    assert ds.column_names == ["video", "digits", "positions"]
    free_range, digit_size = 64 - 28, 28
    bounced = False
    for row in ds:
        video, positions = row["video"], row["positions"]
        assert video.shape == (20, 64, 64, 3) and video.dtype == np.uint8
        assert positions.shape == (2, 20, 2)
        assert np.array_equal(video[..., 0], video[..., 1])  # gray digits
        assert positions.min() >= 0 and positions.max() <= free_range
        for frame in range(20):
            inside = np.zeros((64, 64), dtype=bool)
            for top, left in positions[:, frame]:
                inside[top : top + digit_size, left : left + digit_size] = True
            assert video[frame, ..., 0][~inside].max() == 0
            assert video[frame, ..., 0][inside].max() > 100
        steps = np.abs(np.diff(positions.astype(np.float64), axis=1))
        # 0.1 of the free range a frame in total (up to rounding, and shorter on a bounce frame).
        speeds = np.hypot(steps[..., 0], steps[..., 1])
        assert np.median(speeds) == pytest.approx(3.6, abs=0.8)
        bounced |= bool((np.diff(np.sign(np.diff(positions, axis=1)), axis=1) != 0).any())
    assert bounced


def test_moving_mnist_streams_the_same_videos_and_refuses_held_out_split(world_cache):
    cached = moving_mnist("validation", 3, seed=5, image_size=32, num_frames=5)
    streamed = list(moving_mnist("validation", 3, seed=5, image_size=32, num_frames=5, streaming=True))
    assert all(np.array_equal(row["video"], example["video"]) for row, example in zip(cached, streamed))
    with pytest.raises(ValueError, match="held-out"):
        moving_mnist("test_held_out", 2)
    with pytest.raises(ValueError, match="speed_range"):
        moving_mnist("train", 2, speed_range=(0.2, 0.1))
