"""Subcommands of the md arm (being written)."""


def register(sub) -> None:
    pass
