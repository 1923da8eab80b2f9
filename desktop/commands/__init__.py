"""Subcommands of ``python main.py``; each module registers itself with desktop.cli."""
