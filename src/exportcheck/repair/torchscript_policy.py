"""TorchScript is refused, with the reason and the re-export command (see docs/fix.md).

A TorchScript archive holds its graph twice: as Python source in `code/` (recompiled on every
load) and in the constants and attributes that source reads. `torch.jit.trace` bakes
`training=True` into `prim::Constant` values that one node may share with unrelated arguments
(an `align_corners`, a `batch_first`), and a scripted module reads `self.training` from its
pickled state at run time. A sound rewrite would have to edit source text, the shared
constants and the pickled flags together, and re-serialize through `torch.jit.load`, which
runs the archive's code: more than a re-export, and with no proof a static pass could give.
"""

from __future__ import annotations

from exportcheck.errors import UnsupportedArtifactError

REEXPORT = (
    "model.eval(); torch.jit.trace(model, example_inputs).save(PATH) "
    "(or torch.jit.script(model.eval()).save(PATH))"
)


def refuse_torchscript(path: str) -> UnsupportedArtifactError:
    return UnsupportedArtifactError(
        "fix does not rewrite TorchScript: a trace bakes training=True into constants that "
        "other arguments may share and the archive's code is recompiled from source on load, "
        f"so no edit can be proven sound; re-export from the eval-mode model: {REEXPORT}",
        subject=path,
    )
