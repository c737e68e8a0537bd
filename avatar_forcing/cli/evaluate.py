"""`avatar-forcing eval WHAT`: quality evaluation."""

from avatar_forcing.cli.groups import add_group, run_group

MEMBERS = {
    "roundtrip": ("avatar_forcing.eval.roundtrip:roundtrip", "render known motion, re-track it, compare"),
    "model": ("avatar_forcing.eval.evaluate:evaluate", "run checkpoints through the streaming engine"),
    "portraits": ("avatar_forcing.eval.portraits:portraits",
                  "real portraits at rest, talking and listening, re-tracked by MediaPipe"),
    "reactions": ("avatar_forcing.eval.reactions:reactions",
                  "the listening avatar's reactions to real videos as the user, model vs talking-only"),
}


def add_arguments(parser):
    add_group(parser, MEMBERS)


def run(args):
    return run_group(args)
