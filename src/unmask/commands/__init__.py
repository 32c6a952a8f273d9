"""One module per CLI command (discovered by :func:`unmask.cli.build_parser`)."""
