"""The command-line layer: parses, calls the library, renders, maps errors to exit codes."""
