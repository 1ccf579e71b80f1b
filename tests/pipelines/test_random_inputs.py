"""Property-based bad input (issue 20): hypothesis throws random arguments, shapes, dtypes and values at every pipeline.

The property: each call either succeeds with well-formed output (the types ``output_type`` promises, pictures of the
model's size, finite values in [0, 1]) or raises one of the documented error types (``ValueError`` - with
``WorkLimitError`` past a work limit -, ``TypeError``, ``FileNotFoundError``) with a message; never another exception,
and never longer than ``CALL_SECONDS``. Examples are derandomized (the same ones on every run) and few per pipeline
(``EXAMPLES``), so the file runs in well under a minute. The outcome counts are printed at the end of the module
(``pytest -s``) and checked to include both successes and errors.
"""

import collections
import string
import time

import numpy as np
import PIL.Image
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nuwa_hf.pipelines.work_limits import WorkLimitError

SIZE = 16
EXAMPLES = 25
CALL_SECONDS = 20.0
DOCUMENTED_ERRORS = (ValueError, TypeError, FileNotFoundError)
OUTCOMES: dict = collections.defaultdict(collections.Counter)  # task -> outcome -> count

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------------------------------------------------
# Strategies

anything = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(string.printable, max_size=6),
    st.just([1, 2]), st.just({"a": 1}), st.just(b"x"), st.just(np.float32(0.5)), st.just(torch.tensor(2)),
)


def mostly(valid, invalid=anything):
    """``valid`` about three times in four, else ``invalid``: most calls get far enough to test the later checks."""
    return st.sampled_from((True, True, True, False)).flatmap(lambda good: valid if good else invalid)


small_count = mostly(st.integers(1, 2))
frames_count = st.one_of(st.integers(1, 5), st.integers(1, 5), st.integers(13, 10**6), anything)

OPTION_VALUES = {
    "guidance_scale": mostly(st.floats(1, 5)),
    "temperature": mostly(st.floats(0.1, 3)),
    "top_k": mostly(st.integers(0, 70)),
    "top_p": mostly(st.floats(0.05, 1)),
    "do_sample": mostly(st.booleans()),
    "batch_size": mostly(st.integers(1, 4)),
    "seed": mostly(st.integers(0, 2**63 - 1)),
    "num_candidates": mostly(st.just(1), st.one_of(st.integers(2, 10**4), anything)),
    "output_type": st.sampled_from(["pil", "np", "pt", "tokens", "jpeg", None]),
    "generator": st.one_of(st.none(), st.just("0")),
    "unknown_option": anything,
}


@st.composite
def options(draw):
    names = draw(st.lists(st.sampled_from(sorted(OPTION_VALUES)), max_size=3, unique=True))
    return {name: draw(OPTION_VALUES[name]) for name in names}


pixel_dtypes = st.sampled_from([np.uint8, np.int64, np.float32, np.float64, np.bool_, np.complex64, np.uint16])


def arrays(min_dims, max_dims, max_side=SIZE + 4, dtype=pixel_dtypes):
    return hnp.arrays(
        dtype=dtype, shape=hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side),
        elements=None,
    )


def _float_pixels(draw, shape):
    values = draw(st.sampled_from(["unit", "nan", "inf", "big"]))
    array = np.random.default_rng(draw(st.integers(0, 9))).random(shape, dtype=np.float32)
    if values != "unit" and array.size:
        array.flat[0] = {"nan": np.nan, "inf": np.inf, "big": 7.0}[values]
    return array


@st.composite
def images(draw):
    kind = draw(st.sampled_from(["uint8", "uint8", "float", "random array", "pil", "path", "anything"]))
    if kind == "uint8":
        return np.random.default_rng(draw(st.integers(0, 9))).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    if kind == "float":
        return _float_pixels(draw, (SIZE, SIZE, 3))
    if kind == "random array":
        return draw(arrays(1, 4))
    if kind == "pil":
        mode = draw(st.sampled_from(["RGB", "L", "RGBA", "P", "I", "F", "1"]))
        return PIL.Image.new(mode, (draw(st.integers(1, 40)), draw(st.integers(1, 40))))
    if kind == "path":
        return draw(st.sampled_from(["/nonexistent/image.png", "relative/missing.gif", ""]))
    return draw(anything)


@st.composite
def videos(draw):
    kind = draw(st.sampled_from(["uint8", "uint8", "float", "random array", "frame list", "mixed sizes", "batch",
                                 "image"]))
    frames = draw(mostly(st.integers(1, 4), st.just(0)))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    if kind == "uint8":
        return rng.integers(0, 256, (frames, SIZE, SIZE, 3), dtype=np.uint8)
    if kind == "float":
        return _float_pixels(draw, (max(frames, 1), SIZE, SIZE, 3))
    if kind == "random array":
        return draw(arrays(2, 5, max_side=6))
    if kind == "frame list":
        return [PIL.Image.new("RGB", (SIZE, SIZE)) for _ in range(frames)]
    if kind == "mixed sizes":
        return [PIL.Image.new("RGB", (SIZE, SIZE)), PIL.Image.new("RGB", (SIZE + 1, SIZE))]
    if kind == "batch":
        return [rng.integers(0, 256, (draw(st.integers(1, 3)), SIZE, SIZE, 3), dtype=np.uint8) for _ in range(2)]
    return draw(images())


@st.composite
def sketches(draw, video):
    kind = draw(st.sampled_from(["classes", "classes", "float classes", "random array", "rgb", "list", "anything"]))
    rng = np.random.default_rng(draw(st.integers(0, 9)))
    shape = ((draw(st.integers(1, 4)),) if video else ()) + (SIZE, SIZE)
    if kind == "classes":
        return rng.integers(0, draw(st.sampled_from([2, 8, 300])), shape)
    if kind == "float classes":
        return _float_pixels(draw, shape) * 4
    if kind == "random array":
        return draw(arrays(1, 4, dtype=st.sampled_from([np.int64, np.uint8, np.float32, np.bool_, np.int8])))
    if kind == "rgb":
        return rng.integers(0, 8, shape + (3,))
    if kind == "list":
        return [rng.integers(0, 8, (SIZE, SIZE)) for _ in range(draw(st.integers(0, 3)))]
    return draw(anything)


prompts = mostly(
    st.sampled_from(["a red 3", "the digit 3 is moving up then down", "ünïcødé ✓ \x00", "a " * 300]),
    st.one_of(st.sampled_from(["", "   "]), st.lists(st.sampled_from(["a red 3", "a blue 8", ""]), max_size=3), anything),
)
masks = st.one_of(
    st.sampled_from(["bottom half", "top left", "all", "middle"]),
    st.sampled_from(["bottom half", "nowhere", "mask.png"]),
    st.tuples(st.integers(-5, 20), st.integers(-5, 20), st.integers(-5, 20), st.integers(-5, 20)),
    st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
    arrays(1, 3), anything,
)

# task -> strategy of (positional arguments, task keyword arguments)
CALLS = {
    "nuwa-text-to-image": st.tuples(st.tuples(prompts), st.fixed_dictionaries({}, optional={
        "num_outputs_per_input": small_count})),
    "nuwa-text-to-video": st.tuples(st.tuples(prompts), st.fixed_dictionaries({}, optional={
        "num_frames": frames_count, "num_outputs_per_input": small_count})),
    "nuwa-video-prediction": st.tuples(st.tuples(videos()), st.fixed_dictionaries({}, optional={
        "num_condition_frames": small_count, "num_frames_to_predict": frames_count,
        "include_condition_frames": anything, "num_outputs_per_input": small_count})),
    "nuwa-sketch-to-image": st.tuples(st.tuples(sketches(video=False)), st.fixed_dictionaries({}, optional={
        "num_outputs_per_input": small_count})),
    "nuwa-image-completion": st.tuples(st.tuples(images(), masks), st.fixed_dictionaries({}, optional={
        "prompt": prompts, "num_outputs_per_input": small_count})),
    "nuwa-image-manipulation": st.tuples(st.tuples(images(), prompts, masks), st.fixed_dictionaries({}, optional={
        "num_outputs_per_input": small_count})),
    "nuwa-sketch-to-video": st.tuples(st.tuples(sketches(video=True)), st.fixed_dictionaries({}, optional={
        "num_outputs_per_input": small_count})),
    "nuwa-video-manipulation": st.tuples(st.tuples(videos(), prompts), st.fixed_dictionaries({}, optional={
        "num_condition_frames": small_count, "num_frames": frames_count, "num_outputs_per_input": small_count})),
}

# --------------------------------------------------------------------------------------------------------------------
# The property


def _leaves(result):
    if isinstance(result, (list, tuple)):
        assert result, "an empty list in the output"
        return [leaf for item in result for leaf in _leaves(item)]
    return [result]


def check_well_formed(result, output_type):
    leaves = _leaves(result)
    for leaf in leaves:
        if output_type in (None, "pil"):
            assert isinstance(leaf, PIL.Image.Image) and leaf.mode == "RGB" and leaf.size == (SIZE, SIZE)
        elif output_type == "np":
            assert isinstance(leaf, np.ndarray) and leaf.dtype == np.float32 and leaf.shape[-3:] == (SIZE, SIZE, 3)
            assert np.isfinite(leaf).all() and leaf.min() >= 0 and leaf.max() <= 1
        elif output_type == "pt":
            assert torch.is_tensor(leaf) and leaf.shape[-3:] == (3, SIZE, SIZE) and torch.isfinite(leaf).all()
        else:
            assert torch.is_tensor(leaf) and not leaf.is_floating_point() and leaf.shape[-2:] == (4, 4)


def call_and_classify(pipe, args, kwargs):
    started = time.perf_counter()
    try:
        result = pipe(*args, **kwargs)
    except DOCUMENTED_ERRORS as error:
        assert str(error).strip(), f"{type(error).__name__} without a message"
        outcome = "work limit" if isinstance(error, WorkLimitError) else type(error).__name__
    else:
        check_well_formed(result, kwargs.get("output_type"))
        outcome = "success"
    seconds = time.perf_counter() - started
    assert seconds < CALL_SECONDS, f"the call took {seconds:.1f} s"
    return outcome


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    """After the module: how many random calls were tried, by outcome (printed; run with -s to see it)."""
    yield
    totals = collections.Counter()
    for counts in OUTCOMES.values():
        totals.update(counts)
    print(f"\nrandom pipeline calls: {sum(totals.values())} tried; " + ", ".join(f"{k}: {v}" for k, v in sorted(totals.items())))
    for task, counts in sorted(OUTCOMES.items()):
        print(f"  {task}: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


@pytest.mark.parametrize("task", sorted(CALLS))
def test_random_calls_succeed_or_raise_a_documented_error(task, pipes, single_threaded_torch):
    pipe = pipes(task)
    outcomes = collections.Counter()

    @SETTINGS
    @given(call=CALLS[task], extra=options())
    def property_(call, extra):
        args, kwargs = call
        outcome = call_and_classify(pipe, args, {**kwargs, **extra})
        outcomes[outcome] += 1
        OUTCOMES[task][outcome] += 1

    property_()
    assert sum(outcomes.values()) >= EXAMPLES
    assert outcomes["success"] and len(outcomes) >= 2, (
        f"the examples of {task} did not reach both successes and errors: {dict(outcomes)}")
