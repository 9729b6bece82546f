"""Archive content a loader would execute or misplace (`unsafe-archive-content`).

What it finds
    In a TorchScript or torch.export archive: a pickle that names a global outside the small
    set torch writes (found by scanning its opcodes, never by loading it); a weight stored as a
    pickle (`use_pickle`); a native library or an AOTInductor package; a member that a loader
    extracting the archive would write through a link or outside its folder; TorchScript code
    that `torch.jit.load` runs (`__setstate__` and all it calls) using an operator off the
    load-time allow-list or a call that cannot be resolved, however it is spelled (aliases,
    `ops.aten.*`, method chains); and file operations (`torch.from_file`, `torch.save`)
    anywhere in the code. docs/security.md lists the allowed operators.

Why it is wrong
    `torch.jit.load` and `torch.export.load` are loaders, not parsers: they unpickle with the
    real classes (torch.export retries with `weights_only=False`), run `__setstate__`, extract
    and `dlopen` AOTInductor libraries. Any of these runs the file author's code on the machine
    that loads the model. exportcheck's own readers do none of it, which is how it can report
    this and still check the rest of the file.

How to fix
    Do not load the file. Re-export the model from its source with `torch.export.save` or
    `torch.jit.save` of a plain module; an archive those write contains none of this.
"""

from __future__ import annotations

from collections.abc import Iterator

from exportcheck.readers.view import ArtifactView
from exportcheck.results.findings import Severity
from exportcheck.rules.base import Hit, Rule


class UnsafeArchiveContent(Rule):
    slug = "unsafe-archive-content"
    code = "EC108"
    severity = Severity.ERROR
    summary = "Archive content a torch loader would execute: foreign pickle globals, native code"

    def check_artifact(self, view: ArtifactView) -> Iterator[Hit]:
        for content in view.unsafe_content:
            yield Hit(
                f"{content.member}: {content.reason}",
                scope="archive",
                node_name=content.member,
            )
