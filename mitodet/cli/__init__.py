"""Command-line interface: ``mitodet <stage> <command>``; see ``mitodet --help``."""
