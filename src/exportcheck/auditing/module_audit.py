"""The module audit before export: what `model.eval()` left in training mode, what the mode
switch changes, and BatchNorm statistics that were never trained."""

from __future__ import annotations

import ast
import inspect as _inspect
import textwrap
from functools import lru_cache
from typing import Any

from exportcheck.auditing.modes import preserved
from exportcheck.results.findings import Finding, Location, Severity
from exportcheck.results.problems import library_relative
from exportcheck.rules import ModeDependentModule, StaleBatchNormStats, SubmoduleLeftTraining
from exportcheck.rules.base import Rule


@lru_cache(maxsize=512)
def source_of(definition: Any) -> tuple[str | None, int | None]:
    """The file and first line of a class's or function's definition, where Python can tell."""
    try:
        _, first = _inspect.getsourcelines(definition)
        return _inspect.getsourcefile(definition), first
    except (OSError, TypeError):
        return None, None


def overriding_train(modules: dict[str, Any], name: str) -> Any:
    """The `train` override that leaves `name` behind: on the nearest ancestor whose class
    replaces `nn.Module.train` (the module's own class when it is the root)."""
    from torch import nn

    path = name
    while True:
        path = path.rsplit(".", 1)[0] if "." in path else ""
        owner = modules.get(path)
        train = getattr(type(owner), "train", None)
        if owner is not None and train is not nn.Module.train:
            return train
        if not path:
            return None


@lru_cache(maxsize=256)
def _assignment_line(cls: type, attribute: str) -> int | None:
    """The line of `self.<attribute> = ...` in a class's own `__init__` (read with ast)."""
    init = cls.__dict__.get("__init__")
    if init is None or not attribute.isidentifier():
        return None
    try:
        lines, first = _inspect.getsourcelines(init)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError):
        return None
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
                and target.attr == attribute
            ):
                return first + node.lineno - 1
    return None


def built_at(modules: dict[str, Any], name: str) -> tuple[str | None, int | None]:
    """Where the user's code builds a library module (`self.norm = nn.BatchNorm2d(...)` in the
    nearest enclosing class that is not library code), else that class's first line; a finding
    about a torch layer then points at the model, not into torch."""
    path = name
    while path:
        parent, _, attribute = path.rpartition(".")
        owner = type(modules.get(parent))
        source_file, first = source_of(owner)
        if source_file is not None and library_relative(source_file) is None:
            return source_file, _assignment_line(owner, attribute) or first
        path = parent
    return None, None


def _finding(
    rule: type[Rule],
    message: str,
    subject: str,
    name: str,
    module: Any,
    responsible: Any = None,
    modules: dict[str, Any] | None = None,
    severity: Severity | None = None,
) -> Finding:
    """`responsible` is the code to point at when it is not the module's own class; a module
    whose class is library code is placed where the user's code builds it (`modules`)."""
    source_file, source_line = source_of(responsible if responsible is not None else type(module))
    if responsible is None and modules and source_file and library_relative(source_file):
        user_file, user_line = built_at(modules, name)
        if user_file is not None:
            source_file, source_line = user_file, user_line
    where = Location(
        scope="module tree",
        module=name or None,
        module_type=type(module).__name__,
        source_file=source_file,
        source_line=source_line,
    )
    return rule.finding(message, subject, where, severity)


@lru_cache(maxsize=256)
def forward_reads_training(cls: type) -> bool:
    """Whether a class's own `forward` reads `self.training` (source read with ast, not run)."""
    forward = cls.__dict__.get("forward")
    if forward is None:
        return False
    try:
        source = textwrap.dedent(_inspect.getsource(forward))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    return any(
        isinstance(node, ast.Attribute)
        and node.attr == "training"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        for node in ast.walk(tree)
    )


def mode_dependence(module: Any) -> str | None:
    """Why a module's output depends on its training flag, or None."""
    from torch import nn
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.dropout import _DropoutNd
    from torch.nn.modules.instancenorm import _InstanceNorm

    if isinstance(module, (_DropoutNd, nn.AlphaDropout, nn.FeatureAlphaDropout)):
        return f"dropout p={getattr(module, 'p', '?')} (drops only in training)"
    if isinstance(module, _InstanceNorm) and module.track_running_stats:
        return "instance norm with running statistics (input statistics in training)"
    if isinstance(module, _BatchNorm):
        if module.track_running_stats:
            return "batch norm (batch statistics in training, running statistics in eval)"
        return "batch norm without running statistics (batch statistics in both modes)"
    if isinstance(module, nn.RNNBase) and module.dropout:
        return f"recurrent layer with inter-layer dropout {module.dropout:g}"
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch."):
            break
        if forward_reads_training(cls):
            return f"custom forward of {cls.__qualname__} reads self.training"
    return None


def flag_reader(module: Any) -> str | None:
    """Why a module computes differently by its training flag, from its code: a known
    mode-dependent layer, or a `forward` in its class hierarchy (torch's own included) that
    reads `self.training`, directly or to pass to a functional call; None when nothing does."""
    from torch import nn

    why = mode_dependence(module)
    if why:
        return why
    for cls in type(module).__mro__:
        if cls is nn.Module:
            break
        if forward_reads_training(cls):
            return f"the forward of {cls.__qualname__} reads self.training"
    return None


def _left_training(modules: dict[str, Any], training: set[str], name: str) -> tuple[Severity, str]:
    """An error when the module, or a module below it left in training too, reads the flag; a
    warning with the reason when none does (FakeQuantize with its observers off, a Linear)."""
    below = [n for n in training if n == name or n.startswith(f"{name}." if name else "")]
    readers = [(n, flag_reader(modules[n])) for n in sorted(below)]
    readers = [(n, why) for n, why in readers if why]
    if readers:
        shown = "; ".join(f"{n or '<root>'}: {why}" for n, why in readers[:3])
        more = f" (and {len(readers) - 3} more)" if len(readers) > 3 else ""
        return Severity.ERROR, f"; it computes differently in training mode ({shown}{more})"
    kinds = sorted({type(modules[n]).__name__ for n in below})
    return (
        Severity.WARNING,
        f"; nothing in it reads the flag ({', '.join(kinds)}: no forward reads self.training), "
        "so it computes the same in either mode",
    )


def _stale_statistics(module: Any) -> bool:
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    if not isinstance(module, _BatchNorm) or not module.track_running_stats:
        return False
    tracked = getattr(module, "num_batches_tracked", None)
    mean, var = module.running_mean, module.running_var
    if tracked is None or mean is None or var is None:
        return False
    with torch.no_grad():
        return int(tracked) == 0 and bool(torch.all(mean == 0)) and bool(torch.all(var == 1))


def audit_findings(model: Any, subject: str = "model") -> list[Finding]:
    """Findings for one model; its flags are restored before returning."""
    findings: list[Finding] = []
    with preserved(model):
        model.eval()
        modules = dict(model.named_modules())
        training = {name for name, m in modules.items() if m.training}
        for name, module in modules.items():
            type_name = type(module).__name__
            parent = name.rsplit(".", 1)[0] if "." in name else ""
            if name in training and not (name and parent in training):
                below = sum(
                    1
                    for other in training
                    if other != name and other.startswith(f"{name}." if name else "")
                )
                extra = f" (with {below} submodule(s) below it)" if below else ""
                override = overriding_train(modules, name)
                by = f" ({override.__qualname__})" if override is not None else ""
                severity, effect = _left_training(modules, training, name)
                findings.append(
                    _finding(
                        SubmoduleLeftTraining,
                        f"{name or '<root>'} ({type_name}){extra} is still in training mode after "
                        f"model.eval(): a train() override{by} does not reach it{effect}",
                        subject,
                        name,
                        module,
                        override,
                        severity=severity,
                    )
                )
            why = mode_dependence(module)
            if why:
                findings.append(
                    _finding(
                        ModeDependentModule,
                        f"{name or '<root>'} ({type_name}): {why}",
                        subject,
                        name,
                        module,
                        modules=modules,
                    )
                )
            if _stale_statistics(module):
                findings.append(
                    _finding(
                        StaleBatchNormStats,
                        f"{name} ({type_name}) has num_batches_tracked == 0, running mean all 0 and "
                        "variance all 1: its statistics were never updated",
                        subject,
                        name,
                        module,
                        modules=modules,
                    )
                )
    return findings
