"""The one exception family the library raises for bad input, each carrying its exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3
EXIT_TIMEOUT = 4
EXIT_INTERRUPTED = 130


def first_line(error: BaseException, *, with_type: bool = True, limit: int = 400) -> str:
    """An exception as one line: its first non-empty message line, prefixed with its type."""
    for line in str(error).splitlines():
        line = line.strip()
        if line:
            return (f"{type(error).__name__}: {line}" if with_type else line)[:limit]
    return type(error).__name__


def clipped(value: object, limit: int = 60) -> str:
    """A value quoted in an error (its repr), cut short: a flag of 5,000 digits must not become
    the line."""
    shown = repr(value)
    if len(shown) <= limit:
        return shown
    return f"{shown[: limit - 5]}...{shown[-1]} ({len(shown)} characters)"


class ExportcheckError(Exception):
    """Base of every error the CLI turns into a one-line message and an exit code."""

    exit_code: int = EXIT_INPUT

    def __init__(self, message: str, *, subject: str | None = None) -> None:
        self.subject = subject
        self.message = message
        super().__init__(f"{subject}: {message}" if subject else message)


class InputError(ExportcheckError):
    """The user handed us something we cannot use (a file, a flag, a target)."""


class UnreadableArtifactError(InputError):
    """A file exists but is not a model of a kind we read, or is damaged."""


class NotAnArtifactError(UnreadableArtifactError):
    """A file named like a TorchScript or torch.export archive that is something else: a
    torch.save checkpoint, a TypeScript `.ts`, a legacy pickle."""


class UnsupportedArtifactError(InputError):
    """A file whose kind exportcheck does not inspect."""


class UnsafeExternalDataError(InputError):
    """An ONNX external-data location that is absolute or leaves the model's folder."""


class MissingExternalDataError(InputError):
    """An ONNX model whose weights live in a side file that is not there."""


class TargetError(InputError):
    """A `file.py:callable` or `package.module:callable` target that cannot be built."""


class InputSpecError(InputError):
    """Malformed or ill-fitting `--input-shape` / `--inputs`."""


class ModelRunError(InputError):
    """The user's model raised while running on the example inputs."""


class MissingExtraError(InputError):
    """A command that runs models, on an install without the `validate` extra."""


class ConfigError(InputError):
    """A configuration file or key that is not valid."""


class UsageError(InputError):
    """A flag or setting with a value the command does not take."""


class OutputError(InputError):
    """A report could not be written where the user asked, or would overwrite an input."""


class TargetTimeoutError(ExportcheckError):
    """A target took longer than its `--timeout`."""

    exit_code = EXIT_TIMEOUT


class ForkedChildError(BaseException):
    """Raised in a process the user's code forked, once control comes back to exportcheck: the
    child must not go on to export, compare or report (a BaseException, so no `except
    Exception` on the way keeps it alive)."""
