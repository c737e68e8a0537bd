"""Helpers for command groups such as `bench` and `eval`, whose subcommands live in other modules."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable


def add_group(parser: argparse.ArgumentParser, members: dict[str, tuple[str, str]]) -> None:
    """``members``: name -> ("module:function_prefix", help). The module provides
    ``<prefix>_arguments(parser)`` and ``<prefix>_run(args)``."""
    sub = parser.add_subparsers(dest="group_command", metavar="WHAT", required=True)
    for name, (target, help_text) in members.items():
        p = sub.add_parser(name, help=help_text)
        module_name, prefix = target.split(":")
        p.set_defaults(_target=(module_name, prefix))
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a member whose optional dependency is missing fails only when invoked
        getattr(module, f"{prefix}_arguments")(p)


def run_group(args: argparse.Namespace) -> int:
    module_name, prefix = args._target
    fn: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module_name), f"{prefix}_run")
    return int(fn(args) or 0)
