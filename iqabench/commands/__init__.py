"""Subcommands of the iqabench CLI, one module each."""
