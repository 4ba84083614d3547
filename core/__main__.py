"""Entry point for ``python -m gender_cli``."""

from gender_cli.cli.main import main

main(prog_name="gender-cli")
