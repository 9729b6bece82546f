"""Settings: `[tool.exportcheck]` in pyproject.toml, and the policy it applies to a report."""
