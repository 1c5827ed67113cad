"""``python -m mitodet``: the same as the ``mitodet`` command."""

from mitodet.cli.main import run

if __name__ == "__main__":
    run()
