"""Every model in tests/reference/model_specs*.txt (322: the 1.x and 2.x sets): exact state-dict keys/shapes (allocated lazily)
and the numeric forward fixtures (a per-family CI subset; the full set under -m slow)."""

import numpy as np
import pytest

from tests.reference import (
    ci_subset,
    fill_weights,
    fixture_input,
    fixture_logits,
    has_fixture,
    model_specs,
    state_dict_spec,
)

paddle = pytest.importorskip("paddle")

ALL_MODELS = sorted(model_specs())
CI_SUBSET = set(ci_subset())
# The reference README: under the weights rule these overflow to NaN in eval mode in the reference itself
# (involution squares activations block by block and untrained running statistics do not rescale them). Their
# finite-logits check runs in train mode, where BatchNorm normalises with batch statistics.
OVERFLOW_IN_REFERENCE = {"RedNet26", "RedNet38", "RedNet101", "RedNet152"}
# VAN_B2/B3 likewise (README): LKA multiplies the map by its own large-kernel response block after block.
OVERFLOW_IN_REFERENCE |= {"VAN_B2", "VAN_B3"}
# Ill-conditioned in float32 under the weights rule (StarNet's element-wise products square the activations
# block by block; DSNet's and MicroNet_M1's are amplified ~1e4x): nudging the input by 1e-6, or running on 1
# instead of 2 CPU threads, moves the logits by more than the tolerance, so a bit-exact match depends on the
# machine. They are compared within their own rounding noise, measured on the spot, and without the top-5.
ILL_CONDITIONED = {"StarNet_S1", "StarNet_S2", "StarNet_S3", "StarNet_S4", "MicroNet_M1", "DSNet_tiny",
                   "DSNet_small", "DSNet_base"}
# MobileNetV4_hybrid_large too: its last-stage attention scores reach ~1e4, so the softmax is saturated.
ILL_CONDITIONED |= {"MobileNetV4_hybrid_large"}
# Next-ViT: BatchNorm with fixed statistics lets activations grow to ~1e9, so its attention is hard (scores up to
# ~1e8, top-2 margins ~1e-6 relative) and rounding on another machine picks other keys at near-ties. Such a flip
# moves the logits by far more than the tolerance (the reference differs from ours by one: correlation 0.9999
# with a flip a 1e-5 input nudge reproduces here). Compared within the spread 1e-5 nudges give, same top-1.
NEAR_TIES_IN_REFERENCE = {f"NextViT_{size}_{res}" for size in ("small", "base", "large") for res in (224, 384)}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_state_dict_keys_and_shapes(name):
    import pcls

    with paddle.LazyGuard():
        model = pcls.create_model(name)
    ours = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    ref = {key: shape for key, (shape, _) in state_dict_spec(name).items()}
    missing = sorted(set(ref) - set(ours))
    unexpected = sorted(set(ours) - set(ref))
    assert not missing and not unexpected, f"missing {missing[:8]} unexpected {unexpected[:8]}"
    wrong = {k: (ours[k], ref[k]) for k in ref if ours[k] != ref[k]}
    assert not wrong, f"shape mismatches (ours, ref): {dict(list(wrong.items())[:8])}"


def _fixture_params():
    for name in ALL_MODELS:
        marks = [] if name in CI_SUBSET else [pytest.mark.slow]
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_fixture_params()))
def test_forward_matches_reference_fixture(name):
    import pcls

    paddle.seed(0)
    model = pcls.create_model(name)
    fill_weights(model)
    size = model_specs()[name]
    if name in OVERFLOW_IN_REFERENCE:
        model.train()
        x = np.concatenate([fixture_input(size), fixture_input(size, seed=1)])
        with paddle.no_grad():
            assert np.isfinite(model(paddle.to_tensor(x)).numpy()).all()
        return
    model.eval()
    with paddle.no_grad():
        logits = model(paddle.to_tensor(fixture_input(size))).numpy()
    assert logits.shape == (1, 1000)
    assert np.isfinite(logits).all()
    if not has_fixture(name):
        return  # the reference forward failed (LeViT_384): finite logits from the same code path (README)
    ref = fixture_logits(name)
    tolerance = 1e-4 * max(1.0, float(np.abs(ref).max()))
    if name in ILL_CONDITIONED:
        with paddle.no_grad():
            nudged = model(paddle.to_tensor(fixture_input(size) * np.float32(1 + 1e-6))).numpy()
        noise = float(np.abs(nudged - logits).max())
        assert noise > tolerance, f"{name} is well-conditioned after all: take it out of ILL_CONDITIONED"
        assert float(np.abs(logits - ref).max()) <= 4 * noise
        return
    if name in NEAR_TIES_IN_REFERENCE:
        x = fixture_input(size)
        nudged = [(x * (1 + 1e-5 * np.random.default_rng(seed).standard_normal(x.shape))).astype("float32")
                  for seed in range(3)]
        with paddle.no_grad():
            spread = max(float(np.abs(model(paddle.to_tensor(n)).numpy() - logits).max()) for n in nudged)
        assert spread > tolerance, f"{name} has no near-ties after all: take it out of NEAR_TIES_IN_REFERENCE"
        assert float(np.abs(logits - ref).max()) <= 2 * spread
        assert logits.argmax() == ref.argmax()
        return
    assert float(np.abs(logits - ref).max()) <= tolerance
    top5 = lambda a: list(np.argsort(-a[0])[:5])  # noqa: E731
    assert top5(logits) == top5(ref)
