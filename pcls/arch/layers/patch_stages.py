"""The layout UniFormer introduced and DSNet builds on: per stage a `patch_embed{i}` then a LayerList
`blocks{i}` applied in turn, dropout after the first embedding, a BatchNorm2D `norm` on the last map, and a Linear
`head` over its spatial mean. Subclasses build those attributes (their names are the published keys)."""

from pcls.arch.base import Classifier


class PatchStageClassifier(Classifier):
    classifier_names = ("head",)
    num_stages = 4

    def forward_features(self, x):
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"patch_embed{i}")(x)
            if i == 1:
                x = self.pos_drop(x)
            for block in getattr(self, f"blocks{i}"):
                x = block(x)
        return self.norm(x)

    def forward_head(self, x):
        return self.head(x.flatten(2).mean(-1))
