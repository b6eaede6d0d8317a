"""Per-stage learning-rate multipliers (`Arch.lr_mult_list`, as in the SSLD fine-tune recipe) and frozen stages.

A backbone's stages are what its `stage_layers()` returns when it defines one; otherwise its top-level
sub-layers in order (a container named like `stages`/`blocks` is expanded), leaving out the classifier
and layers without parameters. `lr_mult_list[i]` scales the learning rate of stage i; a multiplier of 0
freezes that stage (no gradient, no update). The classifier keeps the full rate.
"""

from __future__ import annotations

from pcls.errors import PclsError

_EXPANDED = ("stages", "blocks", "layers", "features")


def stage_layers(model):
    """[(name, layer)] — the backbone's stages in input-to-output order, classifier excluded."""
    if hasattr(model, "stage_layers"):
        return list(model.stage_layers())
    head = set(getattr(model, "classifier_names", ("fc",)))
    units = []
    for name, child in model.named_children():
        if name in head or not list(child.parameters()):
            continue
        if name in _EXPANDED and len(list(child.children())) > 1:
            units.extend((f"{name}.{sub}", layer) for sub, layer in child.named_children()
                         if list(layer.parameters()))
        else:
            units.append((name, child))
    return units


def apply_lr_mult(model, lr_mult_list) -> list:
    """Scale each stage's rate by its multiplier; returns [(stage name, multiplier)] for the run log."""
    mults = [float(m) for m in lr_mult_list]
    units = stage_layers(model)
    if len(units) != len(mults):
        names = ", ".join(n for n, _ in units)
        raise PclsError(
            f"Arch.lr_mult_list has {len(mults)} values but {getattr(model, 'model_name', type(model).__name__)} "
            f"has {len(units)} stages ({names}): give one multiplier per stage"
        )
    for (_, layer), mult in zip(units, mults):
        for param in layer.parameters():
            if mult == 0:
                param.stop_gradient = True
            else:
                param.optimize_attr["learning_rate"] = mult
    return [(name, mult) for (name, _), mult in zip(units, mults)]
