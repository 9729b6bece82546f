"""The compare stage: every artifact run on its runtimes against the eval-mode reference."""
