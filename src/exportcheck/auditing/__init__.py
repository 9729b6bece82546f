"""The audit stage: the eval-mode model's modules and its behaviour, before anything is exported."""
