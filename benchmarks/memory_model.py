"""Per-process training memory of NUWA's paper preset under DDP, FSDP2 and FSDP2 + activation checkpointing.

Everything comes from the model itself:

- parameter counts: the paper model built on the meta device (no memory), split into shard units: one encoder layer,
  one decoder layer, and the root (embeddings, position tables, norms, ``lm_head``);
- activations: MEASURED, not estimated: a model of the paper's width with one encoder and one decoder layer runs a
  training forward (dropout on) at the paper's T2V geometry (77 text tokens, a 10x21x21 grid of visual tokens = 4,410
  decoder positions) under ``torch.autograd.graph.saved_tensors_hooks``; the bytes saved for backward (each storage
  once, parameters excluded) are split into encoder layer, decoder layer and the rest (embeddings, logits, loss).
  A layer's share times the paper's depth gives the whole model (layers are identical). The bytes a checkpointed
  layer keeps are its input hidden states (B, L, hidden), plus one layer's full activations while it is recomputed.

Per process, with N processes, P parameters (all trained), fp32 weights and AdamW (Trainer's default optimiser):

=============  ==================  ==========================  ==========================
               DDP                 FSDP2 (full sharding)       FSDP2 + activation ckpt.
=============  ==================  ==========================  ==========================
parameters     4 P                 4 P / N + gathered units    same as FSDP2
gradients      4 P                 4 P / N + root unsharded    same as FSDP2
AdamW moments  8 P                 8 P / N                     8 P / N
activations    b x (per sample)    same as DDP                 b x (layer inputs) + 1 layer
=============  ==================  ==========================  ==========================

(b = micro-batch per process. "gathered units": the root unit stays gathered from the start of the forward to the end
of the backward, plus two layers at a time (the one computing and the next one prefetched); "root unsharded": the
root's full gradients before its reduce-scatter, at the end of backward. DDP's gradient buckets and FSDP's
communication buffers are left out.)

``--measure`` confirms the sharded part on this machine: 2 gloo processes shard a model of the paper's width (with
``--measure-layers`` layers each side, to fit in memory), take one AdamW step, and report the elements each holds,
next to the prediction from the same meta-device count.

Run:  python benchmarks/memory_model.py [--batch-size 2] [--ranks 1 2 8 64] [--measure] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Dict, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration  # noqa: E402

GB = 1e9
LAYER_CLASSES = ("NuwaEncoderLayer", "NuwaDecoderLayer")


def parameter_counts(config: NuwaConfig) -> Dict[str, int]:
    """Parameters of the whole model, of one encoder layer, of one decoder layer and of the root unit (meta device)."""
    with torch.device("meta"):
        model = NuwaForConditionalGeneration(config)
    total = sum(p.numel() for p in model.parameters())
    encoder_layer = sum(p.numel() for p in model.model.encoder.layers[0].parameters())
    decoder_layer = sum(p.numel() for p in model.model.decoder.layers[0].parameters())
    root = total - config.encoder_layers * encoder_layer - config.decoder_layers * decoder_layer
    return {"total": total, "encoder_layer": encoder_layer, "decoder_layer": decoder_layer, "root": root}


def saved_activation_bytes(config: NuwaConfig, visual_grid: Sequence[int], batch_size: int = 1, seed: int = 0):
    """Bytes saved for backward by one training forward, split into encoder layer / decoder layer / rest.

    Measured on a copy of ``config`` with ONE encoder and ONE decoder layer (same width, same geometry): the layer
    figures are per layer. Returns (bytes by part, decoder positions, seconds).
    """
    small = NuwaConfig(**{**config.to_dict(), "encoder_layers": 1, "decoder_layers": 1})
    torch.manual_seed(seed)
    model = NuwaForConditionalGeneration(small).train()
    parameter_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    part = ["rest"]
    for module in model.modules():
        name = type(module).__name__
        if name in LAYER_CLASSES:
            module.register_forward_pre_hook(lambda m, a, n=name: part.append(n) and None)
            module.register_forward_hook(lambda m, a, o: part.pop() and None)
    seen, saved = set(), defaultdict(int)

    def pack(tensor):
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in seen and key not in parameter_storages and storage.nbytes() > 0:
            seen.add(key)
            saved[part[-1]] += storage.nbytes()
        return tensor

    T, H, W = visual_grid
    input_ids = torch.randint(1, small.text_vocab_size, (batch_size, small.max_text_length))
    labels = torch.randint(0, small.visual_vocab_size, (batch_size, T, H, W))
    started = time.time()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=input_ids, labels=labels).loss
    seconds = time.time() - started
    del loss
    return dict(saved), T * H * W, seconds


def memory_table(config: NuwaConfig, activations: Dict[str, int], positions: int, batch_size: int,
                 ranks: Sequence[int], bytes_per_element: int = 4) -> Dict[str, Dict[int, Dict[str, float]]]:
    """GB per process for each strategy and number of processes (see the module docstring)."""
    counts = parameter_counts(config)
    P = counts["total"]
    layer = max(counts["encoder_layer"], counts["decoder_layer"])
    root = counts["root"]
    layer_activation = {"NuwaEncoderLayer": activations.get("NuwaEncoderLayer", 0),
                        "NuwaDecoderLayer": activations.get("NuwaDecoderLayer", 0)}
    full_activations = batch_size * (
        config.encoder_layers * layer_activation["NuwaEncoderLayer"]
        + config.decoder_layers * layer_activation["NuwaDecoderLayer"]
        + activations.get("rest", 0)
    )
    text_positions = config.max_text_length
    kept_inputs = batch_size * bytes_per_element * config.hidden_size * (
        config.encoder_layers * text_positions + config.decoder_layers * positions
    )
    checkpointed = kept_inputs + batch_size * (activations.get("rest", 0) + max(layer_activation.values()))
    table: Dict[str, Dict[int, Dict[str, float]]] = {}
    for strategy in ("DDP", "FSDP2", "FSDP2+AC"):
        table[strategy] = {}
        for n in ranks:
            if strategy == "DDP":
                params, grads, optim = 4 * P, 4 * P, 8 * P
            else:
                gathered = (root + 2 * layer) * (n - 1) / n  # the shards of other processes, gathered here
                params, grads, optim = 4 * P / n + 4 * gathered, 4 * P / n + 4 * root * (n - 1) / n, 8 * P / n
            acts = checkpointed if strategy == "FSDP2+AC" else full_activations
            row = {"parameters": params / GB, "gradients": grads / GB, "optimizer": optim / GB, "activations": acts / GB}
            row["total"] = sum(row.values())
            table[strategy][n] = {k: round(v, 2) for k, v in row.items()}
    return table


# --------------------------------------------------------------------------------------------------------------------
# Measurement of the sharded state on 2 processes


def _measure_worker(rank: int, world_size: int, config_dict: dict, port: int, queue) -> None:
    import torch.distributed as dist

    from nuwa_hf.training.sharded import local_memory_report, shard_nuwa

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = NuwaConfig(**config_dict)
    model = NuwaForConditionalGeneration(config).train()
    shard_nuwa(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    input_ids = torch.randint(1, config.text_vocab_size, (1, config.max_text_length))
    labels = torch.randint(0, config.visual_vocab_size, (1, 1, 2, 2))
    model(input_ids=input_ids, labels=labels).loss.backward()
    optimizer.step()
    queue.put((rank, local_memory_report(model, optimizer)))
    dist.barrier()
    dist.destroy_process_group()


def measure_sharded_state(config: NuwaConfig, world_size: int = 2) -> Dict[str, object]:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    processes = [context.Process(target=_measure_worker, args=(r, world_size, config.to_dict(), port, queue))
                 for r in range(world_size)]
    for process in processes:
        process.start()
    reports = dict(queue.get() for _ in processes)
    for process in processes:
        process.join()
    counts = parameter_counts(config)
    return {"world_size": world_size, "model_parameters": counts["total"],
            "predicted_parameters_per_process": counts["total"] / world_size,
            "measured": [reports[r] for r in range(world_size)]}


def _peak_worker(config_dict: dict, visual_grid, checkpointing: bool, queue) -> None:
    """One training forward + backward in a fresh process; the peak resident memory it added, in bytes."""
    import resource

    from nuwa_hf.training.sharded import checkpoint_layers

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = NuwaConfig(**config_dict)
    model = NuwaForConditionalGeneration(config).train()
    if checkpointing:
        checkpoint_layers(model)
    T, H, W = visual_grid
    input_ids = torch.randint(1, config.text_vocab_size, (1, config.max_text_length))
    labels = torch.randint(0, config.visual_vocab_size, (1, T, H, W))
    page = os.sysconf("SC_PAGE_SIZE")
    before = int(Path("/proc/self/statm").read_text().split()[1]) * page
    model(input_ids=input_ids, labels=labels).loss.backward()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    queue.put(peak - before)


def measure_checkpointing_peak(config: NuwaConfig, visual_grid) -> Dict[str, int]:
    """Peak memory added by a forward + backward, without and with activation checkpointing (spawned processes)."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    result = {}
    for checkpointing in (False, True):
        queue = context.SimpleQueue()
        process = context.Process(target=_peak_worker, args=(config.to_dict(), visual_grid, checkpointing, queue))
        process.start()
        result["checkpointed" if checkpointing else "full"] = queue.get()
        process.join()
    return result


def _markdown(table, ranks) -> str:
    lines = ["| strategy | processes | parameters | gradients | AdamW moments | activations | total (GB) |",
             "|---|---|---|---|---|---|---|"]
    for strategy, rows in table.items():
        for n in ranks:
            r = rows[n]
            lines.append(f"| {strategy} | {n} | {r['parameters']} | {r['gradients']} | {r['optimizer']} | "
                         f"{r['activations']} | {r['total']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=2, help="micro-batch per process (the paper: 128 on 64 GPUs)")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 8, 64])
    parser.add_argument("--grid", type=int, nargs=3, default=[10, 21, 21], help="visual grid T H W of the T2V task")
    parser.add_argument("--measure", action="store_true", help="also measure the sharded state on 2 processes")
    parser.add_argument("--measure-layers", type=int, default=2, help="layers per side of the measured model")
    parser.add_argument("--json", default=None, help="write every figure to this file")
    args = parser.parse_args(argv)

    config = NuwaConfig.paper()
    counts = parameter_counts(config)
    print(f"paper preset: {counts['total'] / 1e6:.1f}M parameters; encoder layer {counts['encoder_layer'] / 1e6:.2f}M, "
          f"decoder layer {counts['decoder_layer'] / 1e6:.2f}M, root {counts['root'] / 1e6:.1f}M")
    activations, positions, seconds = saved_activation_bytes(config, args.grid)
    print(f"activations saved for backward per sample (measured, {seconds:.1f} s forward, {positions} decoder "
          f"positions): " + ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sorted(activations.items())))
    table = memory_table(config, activations, positions, args.batch_size, args.ranks)
    print(f"\nGB per process, fp32, micro-batch {args.batch_size}:\n")
    print(_markdown(table, args.ranks))
    result = {"parameters": counts, "activation_bytes_per_sample": activations, "positions": positions,
              "batch_size": args.batch_size, "table": table}
    if args.measure:
        measured_config = NuwaConfig.paper(encoder_layers=args.measure_layers, decoder_layers=args.measure_layers,
                                           dropout=0.0)
        measurement = measure_sharded_state(measured_config)
        result["measurement"] = measurement
        print(f"\nmeasured on 2 gloo processes, paper width with {args.measure_layers}+{args.measure_layers} layers "
              f"({measurement['model_parameters'] / 1e6:.1f}M parameters; predicted "
              f"{measurement['predicted_parameters_per_process'] / 1e6:.2f}M per process):")
        for rank, report in enumerate(measurement["measured"]):
            print(f"  rank {rank}: " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in report.items()))
    if args.measure:
        # Activation checkpointing: peak of one forward + backward with 3 decoder layers at the paper's geometry.
        ac_config = NuwaConfig.paper(encoder_layers=1, decoder_layers=3)
        peaks = measure_checkpointing_peak(ac_config, args.grid)
        layer = activations.get("NuwaDecoderLayer", 0)
        kept = 4 * ac_config.hidden_size * positions
        # checkpointing drops all decoder-layer activations but one layer's (recomputed) and the kept inputs
        predicted_saving = 3 * layer - (layer + 3 * kept)
        measured_saving = peaks["full"] - peaks["checkpointed"]
        result["checkpointing_peak"] = {**peaks, "predicted_saving": predicted_saving,
                                        "measured_saving": measured_saving}
        print(f"\nactivation checkpointing, paper width, 3 decoder layers, batch 1: peak added by forward+backward "
              f"{peaks['full'] / 1e9:.2f} GB without, {peaks['checkpointed'] / 1e9:.2f} GB with; saving measured "
              f"{measured_saving / 1e9:.2f} GB, predicted {predicted_saving / 1e9:.2f} GB")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
