"""benchmarks/pilot_default_model.py --report: the table and the accuracy-vs-CPU-minutes plot of pilot results."""

import importlib.util
import json
from pathlib import Path

import PIL.Image

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pilot_default_model.py"


def _load():
    spec = importlib.util.spec_from_file_location("pilot_default_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_writes_a_table_and_a_plot_of_every_variant(tmp_path):
    pilot = _load()
    rows = [{"variant": v, "step": s, "wall_minutes": s / 200, "cpu_minutes": s / 100, "digit_accuracy": a}
            for v, points in {"whole": [(800, 0.2), (1600, 0.5)], "window3": [(800, 0.1), (1600, 0.2)]}.items()
            for s, a in points]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert pilot.main(["--report", str(tmp_path), "--docs", str(tmp_path / "docs")]) == 0
    table = (tmp_path / "table.md").read_text().splitlines()
    assert len(table) == 2 + len(rows)
    assert any("window3" in line and "0.20" in line and "16.0" in line for line in table)
    with PIL.Image.open(tmp_path / "docs" / "pilot_study.png") as plot:
        assert plot.width > 300 and plot.height > 200


def test_unknown_variant_is_refused_with_the_known_ones(tmp_path):
    pilot = _load()
    try:
        pilot.main(["--variants", "huge", "--out", str(tmp_path)])
    except SystemExit as error:
        assert "unknown variant 'huge'" in str(error) and "window3" in str(error)
    else:
        raise AssertionError("an unknown variant must be refused")


def test_snapshot_run_keeps_every_nth_checkpoint_of_a_finished_run(tmp_path):
    pilot = _load()
    for step in (250, 2000):
        checkpoint = tmp_path / "nuwa" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "nuwa" / "training_summary.json").write_text("{}")
    pilot.snapshot_run(tmp_path, every=2000, poll_seconds=0.01)
    snapshots = tmp_path / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir() if p.is_dir()) == ["step-2000"]
    assert (snapshots / "step-2000" / "model.safetensors").read_bytes() == b"weights"
    assert (snapshots / "times.txt").read_text().split()[1] == "2000" and (snapshots / "started.txt").exists()


def test_gains_run_scores_each_checkpoint_once_and_plot_gains_draws_the_curve(tiny_model_folder, tmp_path):
    """--gains-run on a run folder: every checkpoint-N gets its condition gains (sampled accuracy every --every steps);
    a second pass skips what is scored; --plot-gains draws the curve and gives one table row per checkpoint."""
    import shutil

    pilot = _load()
    run = tmp_path / "run"
    for step in (1, 2):
        shutil.copytree(tiny_model_folder, run / f"checkpoint-{step}")
    rows = pilot.gains_run(run, sampled_every=10**9, num_examples=4, tasks="t2i,t2v,s2i", image_size=16)
    assert [r["step"] for r in rows] == [1, 2] and "motion" in rows[0]["gains"]["t2v"]
    assert pilot.gains_run(run, sampled_every=10**9, num_examples=4, tasks="t2i,t2v,s2i", image_size=16) == []
    lines = pilot.plot_gains(run, tmp_path / "docs")
    assert len(lines) == 2 + 2 and lines[2].startswith("| 1 |")
    with PIL.Image.open(tmp_path / "docs" / "default_run_gains.png") as plot:
        assert plot.width > 300
