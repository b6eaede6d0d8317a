"""A tiny BatchNorm-free backbone for engine tests (registered as TinyNet). Subprocess tests load this
file through PCLS_PLUGINS; in-process tests import it."""

import os
import signal

import paddle.nn as nn
import paddle.nn.functional as F

from pcls.arch.base import Classifier
from pcls.arch.registry import register
from pcls.engine.callbacks import Callback, register_callback


# fault injection for the resume tests: "KILL:14" sends SIGKILL to this process at the 14th training
# forward pass, "INT:5" sends SIGINT (Ctrl-C) at the 5th
_SIGNAL_AT = os.environ.get("TINYNET_SIGNAL_AT", "")
_forwards = [0]


def _maybe_signal():
    # "TINYNET_FAIL_RANK=1": that rank raises at its 2nd training forward (a dying worker)
    if os.environ.get("TINYNET_FAIL_RANK") == os.environ.get("PADDLE_TRAINER_ID", "0"):
        _forwards[0] += 1
        if _forwards[0] == 2:
            raise RuntimeError("tinynet: injected failure on this rank")
    if not _SIGNAL_AT:
        return
    name, at = _SIGNAL_AT.split(":")
    _forwards[0] += 1
    if _forwards[0] == int(at):
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))


class _TinyNet(Classifier):
    classifier_names = ("fc",)

    def __init__(self, class_num=1000, dropout=0.0):
        super().__init__()
        self.stem = nn.Conv2D(3, 8, 3, stride=2, padding=1)
        self.stage1 = nn.Conv2D(8, 16, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(16, class_num)

    def forward_features(self, x):
        if self.training:
            _maybe_signal()
        return F.relu(self.stage1(F.relu(self.stem(x))))

    def forward_head(self, x):
        return self.fc(self.drop(self.pool(x).flatten(1)))


@register
def TinyNet(class_num=1000, **kwargs):
    return _TinyNet(class_num, **kwargs)


@register_callback()
class RankMarker(Callback):
    """A config-declared callback (Global.callbacks: [{name: RankMarker, folder: DIR}]) that leaves a file per
    process, so a test can see it ran in every rank."""

    def __init__(self, folder):
        self.folder = folder

    def on_train_end(self, trainer, summary):
        from pathlib import Path

        Path(self.folder).mkdir(parents=True, exist_ok=True)
        (Path(self.folder) / f"config_rank{trainer.run.rank}").write_text(str(trainer.global_step))
