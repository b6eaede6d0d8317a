"""Batch operators: MixupOperator, CutmixOperator, OpSampler. They return soft targets [N, class_num]."""

from __future__ import annotations

import numpy as np

from pcls.data.transforms.registry import BatchOperator, instantiate, lookup, register_batch_op, BATCH_OPERATORS
from pcls.errors import PclsError


def one_hot(labels, class_num):
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= class_num):
        raise PclsError(
            f"batch label {int(labels.min() if labels.min() < 0 else labels.max())} is outside [0, {class_num}); "
            "Mixup/Cutmix need labelled data and Arch.class_num covering every label"
        )
    out = np.zeros((labels.size, class_num), dtype=np.float32)
    out[np.arange(labels.size), labels] = 1.0
    return out


class _Mixing(BatchOperator):
    def __init__(self, class_num, alpha):
        if class_num is None or int(class_num) <= 0:
            raise PclsError(f"{type(self).__name__} needs class_num (Arch.class_num), got {class_num}")
        if alpha is None or float(alpha) <= 0:
            raise PclsError(f"{type(self).__name__} alpha must be > 0, got {alpha}")
        self.class_num, self.alpha = int(class_num), float(alpha)


@register_batch_op
class MixupOperator(_Mixing):
    """x = lam * x + (1 - lam) * x[perm], same for one-hot targets, lam ~ Beta(alpha, alpha) per batch."""

    def __init__(self, class_num=None, alpha=1.0):
        super().__init__(class_num, alpha)

    def __call__(self, images, labels, rng):
        targets = one_hot(labels, self.class_num)
        lam = np.float32(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(len(images))
        images = lam * images + (1 - lam) * images[perm]
        return images.astype(np.float32, copy=False), lam * targets + (1 - lam) * targets[perm]


@register_batch_op
class CutmixOperator(_Mixing):
    """Paste a box of area ~ (1 - lam) from a shuffled batch; targets mix by the exact pasted area."""

    def __init__(self, class_num=None, alpha=0.2):
        super().__init__(class_num, alpha)

    def box(self, h, w, lam, rng):
        cut = np.sqrt(1.0 - lam)
        cut_w, cut_h = int(w * cut), int(h * cut)
        cx, cy = int(rng.integers(w)), int(rng.integers(h))
        x0, x1 = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
        y0, y1 = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
        return int(y0), int(y1), int(x0), int(x1)

    def __call__(self, images, labels, rng):
        targets = one_hot(labels, self.class_num)
        lam = rng.beta(self.alpha, self.alpha)
        perm = rng.permutation(len(images))
        h, w = images.shape[-2:]
        y0, y1, x0, x1 = self.box(h, w, lam, rng)
        images = images.copy()
        images[:, :, y0:y1, x0:x1] = images[perm, :, y0:y1, x0:x1]
        lam = np.float32(1.0 - (y1 - y0) * (x1 - x0) / (h * w))
        return images, lam * targets + (1 - lam) * targets[perm]


@register_batch_op
class OpSampler(BatchOperator):
    """Pick one batch op per batch with its `prob` (the remainder = no op, plain one-hot targets).

    Config: OpSampler: {MixupOperator: {alpha: 0.8, prob: 0.5}, CutmixOperator: {alpha: 1.0, prob: 0.5}}
    """

    def __init__(self, class_num=None, **ops):
        if not ops:
            raise PclsError("OpSampler needs at least one batch operator, e.g. MixupOperator: {alpha: 0.2, prob: 0.5}")
        self.class_num = class_num
        self.ops, probs = [], []
        for name, params in ops.items():
            params = dict(params or {})
            probs.append(float(params.pop("prob", 0.0)))
            others = {k: v for k, v in dict(BATCH_OPERATORS.items()).items() if k != "OpSampler"}  # no nesting
            cls = lookup(name, others, "batch operator")
            self.ops.append(instantiate(cls, {"class_num": class_num, **params}, f"OpSampler.{name}"))
        if any(p < 0 for p in probs) or sum(probs) > 1 + 1e-6:
            raise PclsError(f"OpSampler probs must be >= 0 and sum to <= 1, got {probs}")
        self.probs = np.array(probs + [max(0.0, 1.0 - sum(probs))])
        self.probs /= self.probs.sum()

    def __call__(self, images, labels, rng):
        choice = int(rng.choice(len(self.probs), p=self.probs))
        if choice == len(self.ops):
            return images, one_hot(labels, self.class_num)
        return self.ops[choice](images, labels, rng)
