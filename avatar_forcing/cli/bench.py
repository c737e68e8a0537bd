"""`avatar-forcing bench WHAT`: performance benchmarks (ratios are measured side by side in one run)."""

from avatar_forcing.cli.groups import add_group, run_group

MEMBERS = {
    "render": ("avatar_forcing.eval.bench_render:bench_render", "renderer fps and tracker cost"),
    "train": ("avatar_forcing.eval.bench_train:bench_train", "training throughput and paper-preset FLOPs"),
    "model": ("avatar_forcing.eval.bench_model:bench_model", "DFoT streaming step ms per block, one core"),
    "stream": ("avatar_forcing.eval.bench_stream:bench_stream", "streaming latency, speedup, RTF, memory"),
    "serve": ("avatar_forcing.eval.bench_serve:bench_serve", "load test of the WebRTC server"),
}


def add_arguments(parser):
    add_group(parser, MEMBERS)


def run(args):
    return run_group(args)
