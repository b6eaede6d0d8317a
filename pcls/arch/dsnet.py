"""DSNet (Mao et al. 2021, "Dual-stream Network for Visual Recognition"), weight-compatible with
PaddleClas 2.x.

Every block splits its channels into two streams that run side by side: a local one (depthwise 3x3 conv at
full resolution) and a global one (multi-head self-attention over a bilinearly downsampled copy of the map,
8x/4x/2x/2x smaller per stage, so attention stays cheap). A co-attention step then lets each stream query the
other (local queries attend to global keys/values and vice versa), the global stream is upsampled back, and
the two are concatenated, mixed by a 1x1 conv and followed by a conv MLP. The resizing is bilinear
(`pcls.arch.layers.resize`, exportable to Paddle Inference on CPU). Patch embeddings are plain
stride-4/2/2/2 convs; there is no class token — the head averages the final BatchNorm-ed map.
"""

import numpy as np
import paddle
import paddle.nn as nn

from pcls.arch.layers.conv_mlp import ConvMlp
from pcls.arch.layers.patch_stages import PatchStageClassifier
from pcls.arch.layers import DropPath, attend, merge_heads, split_heads
from pcls.arch.layers.resize import bilinear_resize
from pcls.arch.layers.weight_init import init_transformer_weights
from pcls.arch.registry import register

# variant -> blocks per stage
_VARIANTS = {
    "tiny": (2, 2, 4, 1),
    "small": (3, 4, 8, 3),
    "base": (3, 4, 28, 3),
}
_DIMS = (64, 128, 320, 512)
_HEADS = (1, 2, 5, 8)
_PATCHES = (4, 2, 2, 2)
# how much smaller the global (attention) stream's map is than the block's, per stage
_DOWNSAMPLES = (8, 4, 2, 2)


class _PatchEmbed(nn.Layer):
    def __init__(self, in_channels, out_channels, patch):
        super().__init__()
        self.proj = nn.Conv2D(in_channels, out_channels, patch, stride=patch)

    def forward(self, x):
        return self.proj(x)


class MixBlock(nn.Layer):
    """Dual-stream block: the first half of the channels (after norm1 + conv1) feed the attention stream, the
    second half the conv stream; co-attention between them; conv2 fuses [conv, attention] back."""

    def __init__(self, dim, num_heads, downsample, mlp_ratio=4.0, drop=0.0, attn_drop=0.1, drop_path=0.0):
        super().__init__()
        self.num_heads, self.downsample = num_heads, downsample
        self.dim_conv = int(dim * 0.5)
        self.dim_sa = dim - self.dim_conv
        self.scale = (self.dim_sa // num_heads) ** -0.5
        self.pos_embed = nn.Conv2D(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.BatchNorm2D(dim)
        self.conv1 = nn.Conv2D(dim, dim, 1)
        self.conv2 = nn.Conv2D(dim, dim, 1)
        self.norm_conv1 = nn.BatchNorm2D(self.dim_conv)
        self.norm_sa1 = nn.LayerNorm(self.dim_sa)
        self.conv = nn.Conv2D(self.dim_conv, self.dim_conv, 3, padding=1, groups=self.dim_conv)
        self.channel_up = nn.Linear(self.dim_sa, 3 * self.dim_sa)
        self.cross_channel_up_conv = nn.Conv2D(self.dim_conv, 3 * self.dim_conv, 1)
        self.cross_channel_up_sa = nn.Linear(self.dim_sa, 3 * self.dim_sa)
        self.fuse_channel_conv = nn.Linear(self.dim_conv, self.dim_conv)
        self.fuse_channel_sa = nn.Linear(self.dim_sa, self.dim_sa)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(drop)
        self.norm_conv2 = nn.BatchNorm2D(self.dim_conv)
        self.norm_sa2 = nn.LayerNorm(self.dim_sa)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.BatchNorm2D(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), drop=drop)

    def _attend(self, q, k, v):
        return self.proj_drop(merge_heads(attend(q, k, v, self.scale, attn_drop=self.attn_drop)))

    def forward(self, x):
        x = x + self.pos_embed(x)
        batch, _, height, width = x.shape
        residual = x
        x = self.conv1(self.norm1(x))
        sa, conv = x[:, :self.dim_sa], x[:, self.dim_sa:]
        conv = conv + self.conv(self.norm_conv1(conv))

        # global stream: self-attention over the downsampled map
        sa = bilinear_resize(sa, (height // self.downsample, width // self.downsample))
        small_h, small_w = sa.shape[2], sa.shape[3]
        sa = sa.flatten(2).transpose([0, 2, 1])
        sa = sa + self._attend(*split_heads(self.channel_up(self.norm_sa1(sa)), 3, self.num_heads))

        # co-attention: each stream's queries against the other's keys and values
        conv_qkv = self.cross_channel_up_conv(self.norm_conv2(conv)).flatten(2).transpose([0, 2, 1])
        conv_q, conv_k, conv_v = split_heads(conv_qkv, 3, self.num_heads)
        sa_q, sa_k, sa_v = split_heads(self.cross_channel_up_sa(self.norm_sa2(sa)), 3, self.num_heads)
        conv_out = self.fuse_channel_conv(self._attend(conv_q, sa_k, sa_v))
        conv = conv + conv_out.reshape([batch, height, width, self.dim_conv]).transpose([0, 3, 1, 2])
        sa = sa + self.fuse_channel_sa(self._attend(sa_q, conv_k, conv_v))
        sa = sa.reshape([batch, small_h, small_w, self.dim_sa]).transpose([0, 3, 1, 2])
        sa = bilinear_resize(sa, (height, width))

        x = residual + self.drop_path(self.conv2(paddle.concat([conv, sa], axis=1)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DSNet(PatchStageClassifier):
    """variant: 'tiny', 'small', 'base'. drop_path_rate grows linearly over the blocks; drop_rate: dropout
    after the embedding and in the MLPs/attention outputs."""


    def __init__(self, variant="tiny", class_num=1000, in_chans=3, mlp_ratio=4.0, drop_rate=0.0,
                 attn_drop_rate=0.1, drop_path_rate=0.1):
        super().__init__()
        depths = _VARIANTS[variant]
        self.class_num = class_num
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        in_channels, start = in_chans, 0
        for i, (depth, dim) in enumerate(zip(depths, _DIMS), start=1):
            setattr(self, f"patch_embed{i}", _PatchEmbed(in_channels, dim, _PATCHES[i - 1]))
            blocks = [MixBlock(dim, _HEADS[i - 1], _DOWNSAMPLES[i - 1], mlp_ratio, drop_rate, attn_drop_rate,
                               rates[start + j]) for j in range(depth)]
            setattr(self, f"blocks{i}", nn.LayerList(blocks))
            in_channels, start = dim, start + depth
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm = nn.BatchNorm2D(_DIMS[-1])
        self.head = nn.Linear(_DIMS[-1], class_num)
        init_transformer_weights(self)



def _dsnet(variant, class_num, **kwargs):
    kwargs.pop("use_ssld", None)  # only chooses the zoo weights (registry)
    return DSNet(variant, class_num=class_num, **kwargs)


@register
def DSNet_tiny(class_num=1000, **kwargs):
    return _dsnet("tiny", class_num, **kwargs)


@register
def DSNet_small(class_num=1000, **kwargs):
    return _dsnet("small", class_num, **kwargs)


@register
def DSNet_base(class_num=1000, **kwargs):
    return _dsnet("base", class_num, **kwargs)
