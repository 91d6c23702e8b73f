"""The pingan-hub command line: serve, nodes, broker, users, db, demo."""


def main() -> None:
    """The ``pingan-hub`` entry point (pyproject's ``hub.cli:main``)."""
    from hub.cli.main import main as run

    run()
