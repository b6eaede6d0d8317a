"""RASampler (PaddleClas's repeated-augmentation sampler, CvT configs) and Global.use_dali (issue #25 item 13)."""

import logging

import numpy as np
import pytest

from pcls.config import load_config
from pcls.data.sampler import RASampler, build_sampler
from pcls.errors import PclsError


def test_one_replica_sees_each_image_num_repeats_times_in_a_row():
    sampler = RASampler(512, 64, num_repeats=3, shuffle=False)
    flat = [i for batch in sampler for i in batch]
    assert len(flat) == 512 and len(sampler) == 8  # floor(512 / 256) * 256 positions, not 3 x 512
    assert flat[:9] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert flat == [i // 3 for i in range(512)]


def test_replicas_get_different_copies_and_the_same_number_of_batches():
    n, replicas, repeats = 600, 4, 3
    per_rank = [[i for batch in RASampler(n, 32, num_repeats=repeats, shuffle=True, num_replicas=replicas,
                                           rank=r, seed=5) for i in batch] for r in range(replicas)]
    order = np.random.default_rng([5, 0]).permutation(n)
    repeated = np.repeat(order, repeats)
    selected = n // 256 * 256 // replicas  # PaddleClas's rule: 512 / 4 = 128 positions per replica
    for rank, seen in enumerate(per_rank):
        assert seen == repeated[rank::replicas][:selected].tolist()
    # the three copies of the first image went to three different replicas
    first = int(order[0])
    assert sum(first in seen[:1] for seen in per_rank) == 3


def test_epochs_shuffle_differently_and_resume_skips_batches():
    sampler = RASampler(300, 16, num_repeats=2, shuffle=True, seed=1)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1 and len(epoch0) == len(epoch1) == 16  # 256 positions / 16
    sampler.set_start_batch(10)
    assert list(sampler) == epoch1[10:]


def test_drop_last_and_a_data_set_too_small():
    assert len(RASampler(300, 100, num_repeats=3, drop_last=True)) == 2
    assert len(RASampler(300, 100, num_repeats=3, drop_last=False)) == 3
    with pytest.raises(PclsError, match="200 images make no batch of 8; use DistributedBatchSampler"):
        RASampler(200, 8, num_repeats=3)


def test_rasampler_from_a_config_section_with_the_schema_default():
    sampler = build_sampler({"name": "RASampler", "batch_size": 64, "shuffle": False}, 256, train=True)
    assert isinstance(sampler, RASampler) and sampler.num_repeats == 3
    cfg = load_config("demo", ["DataLoader.Train.sampler.name=RASampler", "DataLoader.Train.sampler.num_repeats=2"],
                      is_recipe=True)
    assert cfg["DataLoader"]["Train"]["sampler"]["num_repeats"] == 2


def test_use_dali_trains_with_pcls_loader_and_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        cfg = load_config("demo", ["Global.use_dali=True"], is_recipe=True)
    assert cfg["Global"]["use_dali"] is True
    warnings = [r.getMessage() for r in caplog.records if "use_dali" in r.getMessage()]
    assert len(warnings) == 1 and "decoded by pcls's own loader" in warnings[0]
