"""What the ``nuwa-hf`` command runs beyond one pipeline call: the demo page of all eight tasks (:mod:`.demo`) and
evaluation runs on held-out splits (:mod:`.evaluate`). They drive the pipelines with the built-in worlds' held-out
examples (:mod:`nuwa_hf.data.task_examples`) and score them with :mod:`nuwa_hf.evaluation`; the pipelines themselves
import neither."""
