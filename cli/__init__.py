"""The ``gender-cli`` command: parses options and calls the library packages."""
