"""Subcommands of the dft arm (being written)."""


def register(sub) -> None:
    pass
