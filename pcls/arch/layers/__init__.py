"""Blocks shared by the backbone families. One block, one place: a family composes these and never
defines its own copy. Sub-modules by kind: activations, conv (conv-bn-act), drop (drop-path), ..."""

from pcls.arch.layers.activations import make_act
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.drop import DropPath

__all__ = ["make_act", "ConvBNAct", "DropPath"]
