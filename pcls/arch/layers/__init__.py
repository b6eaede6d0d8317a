"""Blocks shared by the backbone families. One block, one place: a family composes these and never
defines its own copy. Sub-modules by kind: activations, conv (conv-bn-act), drop (drop-path), ..."""

from pcls.arch.layers.activations import make_act
from pcls.arch.layers.conv import ConvBNAct
from pcls.arch.layers.conv_act import ConvAct
from pcls.arch.layers.preact import BNActConv
from pcls.arch.layers.attention import Attention, WindowAttention, attend, merge_heads, split_heads
from pcls.arch.layers.drop import DropPath
from pcls.arch.layers.mlp import Mlp
from pcls.arch.layers.patch_embed import PatchEmbed
from pcls.arch.layers.pos_embed import adapt_state_dict
from pcls.arch.layers.se import SqueezeExcite
from pcls.arch.layers.channels import make_divisible
from pcls.arch.layers.activations import HardSigmoid
from pcls.arch.layers.inverted_residual import InvertedResidual, InvertedResidualNames, conv_bn_factory
from pcls.arch.layers.heads import LastConvClassifier

__all__ = ["make_act", "ConvBNAct", "DropPath",
           "Attention", "WindowAttention", "attend", "split_heads", "merge_heads", "Mlp", "PatchEmbed", "adapt_state_dict",
           "SqueezeExcite", "make_divisible",
           "ConvAct", "BNActConv",
           "HardSigmoid", "InvertedResidual", "InvertedResidualNames", "conv_bn_factory", "LastConvClassifier"]
