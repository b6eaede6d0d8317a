"""Channel shuffle (ShuffleNet): interleave the channels of `groups` groups so the next grouped or split
operation mixes information across them. Used by ShuffleNetV2 and ESNet."""

import paddle


def channel_shuffle(x, groups: int):
    n, c, h, w = x.shape
    x = paddle.reshape(x, [n, groups, c // groups, h, w])
    x = paddle.transpose(x, [0, 2, 1, 3, 4])
    return paddle.reshape(x, [n, c, h, w])
