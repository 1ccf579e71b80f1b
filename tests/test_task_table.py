"""The one task table (nuwa_hf.tasks) agrees with everything that reads it: pipelines, training, CLI, demo."""

import inspect

import pytest

from nuwa_hf.tasks import TASK_CODES, TASK_NAMES, TASKS, front_end_name, get_task_info


def test_every_pipeline_class_takes_the_inputs_the_table_gives():
    from nuwa_hf.pipelines import PIPELINE_CLASSES

    assert list(PIPELINE_CLASSES) == list(TASK_NAMES) and len(TASKS) == 8
    for task in TASKS:
        cls = PIPELINE_CLASSES[task.name]
        assert cls.__name__ == task.pipeline_class and cls.__module__ == task.pipeline_module
        assert cls.makes_video == task.makes_video, task.code
        assert cls.needs_sketch_vqgan == (task.condition == "sketch"), task.code
        parameters = list(inspect.signature(cls.__call__).parameters.values())[1:]
        for name in task.inputs + task.optional_inputs:
            assert name in [p.name for p in parameters], (task.code, name)
        # The required inputs come first, in the table's order (all but the first may default to None: a request
        # dict given as the first argument holds them).
        positional = [p.name for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD]
        assert tuple(positional[:len(task.inputs)]) == task.inputs, task.code
        assert parameters[0].default is parameters[0].empty, task.code


def test_training_tasks_are_the_trainable_rows():
    from nuwa_hf.training.tasks import FINETUNING_TASKS, PRETRAINING_TASKS, get_task

    assert PRETRAINING_TASKS == ("t2i", "t2v", "v2v") and FINETUNING_TASKS == ("s2i", "s2v")
    for task in TASKS:
        if task.trainable:
            assert (get_task(task.code).condition, get_task(task.code).visual) == (task.condition, task.visual)
        else:
            with pytest.raises(ValueError, match="zero-shot"):
                get_task(task.code)


@pytest.mark.parametrize("spelling", ["T2V", "t2v", " text-to-video ", "nuwa-text-to-video"])
def test_a_task_can_be_named_every_way_users_name_it(spelling):
    assert get_task_info(spelling).name == "nuwa-text-to-video" == TASK_CODES["T2V"]


def test_unknown_tasks_list_the_known_ones():
    with pytest.raises(ValueError, match="nuwa-text-to-image.*T2I"):
        get_task_info("text-to-sound")
    with pytest.raises(TypeError, match="string"):
        get_task_info(3)


def test_the_demo_titles_and_cli_help_cover_every_task():
    from nuwa_hf.commands.demo import TASK_TITLES
    from nuwa_hf.commands.generate import task_help

    lines = task_help().splitlines()[1:]
    assert len(lines) == len(TASKS)
    for task, line in zip(TASKS, lines):
        assert task.code in TASK_TITLES[task.name] and task.title in TASK_TITLES[task.name]
        assert line.split()[:2] == [task.name[len("nuwa-"):], task.code]
        for name in task.inputs + task.optional_inputs + task.frame_options:  # the flags, read off the table
            assert "--" + front_end_name(name).replace("_", "-") in line, (task.code, name)
    assert '[--mask "bottom half"]' in lines[4]  # an optional input's default, from the pipeline's signature


def test_every_pipeline_takes_the_frame_options_the_table_gives():
    from nuwa_hf.pipelines import PIPELINE_CLASSES

    # request options that count frames are the table's frame options; the others shape the request in other ways
    # (image completion's blank_region / regenerate_border)
    for task in TASKS:
        options = set(PIPELINE_CLASSES[task.name].request_options)
        counting = {name for name in options if "frames" in name} - {"include_condition_frames"}
        assert counting == set(task.frame_options), task.code
    assert set(PIPELINE_CLASSES["nuwa-image-completion"].request_options) == {"blank_region", "regenerate_border"}


def test_output_frames_follow_the_frame_options():
    trained = 3
    assert get_task_info("T2I").output_frames(trained, num_frames=8) == 1
    assert get_task_info("T2V").output_frames(trained) == 3 and get_task_info("T2V").output_frames(trained, 8) == 8
    assert get_task_info("TV2V").output_frames(trained, num_frames=5, num_condition_frames=1) == 5
    assert get_task_info("V2V").output_frames(trained, num_condition_frames=1, num_frames_to_predict=4) == 5
    assert get_task_info("S2V").output_frames(trained) == 3


def test_which_video_inputs_take_an_image():
    assert [task.code for task in TASKS if task.takes_image_as_video] == ["V2V", "TV2V"]
    assert front_end_name("sketch_video") == "sketch" and front_end_name("prompt") == "prompt"


def test_call_arguments_follow_the_table():
    """What a front end (the web app) passes to a task pipeline, from inputs named as the table names them."""
    assert get_task_info("TI2I").call_arguments({"image": "i", "prompt": "p", "mask": "m"}) == (("i", "p", "m"), {})
    assert get_task_info("I2I").call_arguments({"image": "i", "mask": "m"}) == (("i",), {"mask": "m"})
    assert get_task_info("I2I").call_arguments({"image": "i", "mask": None}) == (("i",), {})
    assert get_task_info("V2V").call_arguments({"video": "v"}, num_condition_frames=1, num_frames_to_predict=None) \
        == (("v",), {"num_condition_frames": 1})
    assert get_task_info("S2V").call_arguments({"sketch_video": "s"}) == (("s",), {})
    with pytest.raises(TypeError, match="does not take num_frames"):
        get_task_info("T2I").call_arguments({"prompt": "p"}, num_frames=3)
    with pytest.raises(TypeError, match="does not take sketch"):
        get_task_info("T2I").call_arguments({"prompt": "p", "sketch": "s"})
    with pytest.raises(ValueError, match="needs prompt"):
        get_task_info("TV2V").call_arguments({"video": "v", "prompt": None})
