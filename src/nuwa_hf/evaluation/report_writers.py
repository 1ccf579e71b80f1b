"""Write a metric table (the dict ``task_metrics`` returns) as JSON and as a Markdown table, each atomically.

JSON has no infinity or NaN, so non-finite numbers (PSNR of identical images) are written as the strings "inf",
"-inf" and "nan" instead of producing invalid JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from ..file_io import PathLike, atomic_write_text


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _json_safe(value.item())  # numpy / torch scalars
    return value


def write_metrics_json(table: Mapping[str, Any], path: PathLike) -> Path:
    """The whole table (rows, details, skipped) as indented JSON."""
    return atomic_write_text(path, json.dumps(_json_safe(table), indent=2, allow_nan=False) + "\n")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def _format_held_out(held_out: Any) -> str:
    if not held_out:
        return ""
    parts = []
    for key, value in held_out["accuracy"].items():
        chance = held_out["chance"].get(key)
        part = f"{key.replace('_', ' ')} {value:.3f}"
        if chance is not None:
            part += f" (chance {chance:.3f})"
        parts.append(part)
    if held_out.get("examples"):
        parts.append(f"n={held_out['examples']}")
    return "; ".join(parts)


def metrics_markdown(table: Mapping[str, Any]) -> str:
    """The table as Markdown: one row per metric with its scorer and the scorer's held-out accuracy."""
    lines = [f"## {table['task']} evaluation", ""]
    if table.get("num_generated") is not None:
        lines += [f"{table['num_generated']} generated samples.", ""]
    lines += ["| metric | value | scorer | scorer held-out accuracy |", "|---|---|---|---|"]
    for row in table["rows"]:
        cells = [row["metric"], _format_value(row["value"]), row.get("scorer") or "",
                 _format_held_out(row.get("scorer_held_out"))]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    if table.get("skipped"):
        lines += ["", "Not computed:"]
        lines += [f"- {metric}: {reason}" for metric, reason in table["skipped"].items()]
    return "\n".join(lines) + "\n"


def write_metrics_markdown(table: Mapping[str, Any], path: PathLike) -> Path:
    """The Markdown table (see ``metrics_markdown``) written to ``path``."""
    return atomic_write_text(path, metrics_markdown(table))
