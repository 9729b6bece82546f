"""Targets: `file.py:callable`, `package.module:callable` or a folder, built into models and
example inputs (this stage executes the user's code; nothing else does)."""
