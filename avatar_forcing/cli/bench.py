"""`avatar-forcing bench WHAT`: performance benchmarks (ratios are measured side by side in one run)."""

import importlib

from avatar_forcing.cli.groups import add_group, run_group

MEMBERS = {
    "render": ("avatar_forcing.eval.bench_render:bench_render", "renderer fps and tracker cost"),
    "train": ("avatar_forcing.eval.bench_train:bench_train", "training throughput and paper-preset FLOPs"),
    "model": ("avatar_forcing.eval.bench_model:bench_model", "DFoT streaming step ms per block, one core"),
    "stream": ("avatar_forcing.eval.bench_stream:bench_stream", "streaming latency, speedup, RTF, memory"),
    "serve": ("avatar_forcing.eval.bench_serve:bench_serve", "load test of the WebRTC server"),
}
# Parts of a benchmark that need an optional extra: (member, module, function, package, extra). Without
# the package the part is skipped with a note instead of the whole run failing on an ImportError.
OPTIONAL_PARTS = (
    ("stream", "avatar_forcing.eval.bench_stream", "bench_wav2vec2", "transformers", "wav2vec"),
)


def add_arguments(parser):
    add_group(parser, MEMBERS)


def skip_missing_parts(member: str) -> list[str]:
    """Replace the optional parts of ``member`` whose package is missing; returns the skipped names."""
    skipped = []
    for name, module_name, function, package, extra in OPTIONAL_PARTS:
        if name != member:
            continue
        try:
            importlib.import_module(package)
        except ImportError:
            module = importlib.import_module(module_name)

            def skip(*args, _package=package, _extra=extra, **kwargs):
                print(f"  (skipped: {_package} is not installed; pip install 'avatar-forcing[{_extra}]')")
                return None

            setattr(module, function, skip)
            skipped.append(function)
    return skipped


def run(args):
    skip_missing_parts(args.group_command)
    return run_group(args)
