"""Subcommands of the exafs arm (being written)."""


def register(sub) -> None:
    pass
