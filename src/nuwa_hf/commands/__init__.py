"""The ``nuwa-hf`` subcommands, one module each, on the shared base of :mod:`.base` (exit codes, errors, argument
types, model-folder checks): :mod:`.generate`, :mod:`.demo` (also the demo page of all eight tasks), :mod:`.evaluate`
(also evaluation runs on held-out splits), :mod:`.train`, :mod:`.push` and :mod:`.push_code`. :mod:`nuwa_hf.cli`
builds the parser from them. The demo and evaluation drive the pipelines with the built-in worlds' held-out examples
(:mod:`nuwa_hf.data.task_examples`) and score them with :mod:`nuwa_hf.evaluation`; the pipelines themselves import
neither."""
