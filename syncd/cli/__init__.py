"""The ``syncd`` command line."""


def main() -> None:
    raise SystemExit("syncd: the CLI is being built")
