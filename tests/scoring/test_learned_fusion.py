import json

import numpy as np
import pytest

from sasv.metrics.eer import sasv_eers
from sasv.scoring.cosine import fuse_scores
from sasv.scoring.learned_fusion import (
    KEY_WEIGHTS,
    FusionModel,
    TrialMismatchError,
    check_same_trials,
    cm_features,
    sample_weights,
    train_fusion,
)
from sasv.scoring.score_files import TrialScores
from tests.synthetic_scores import EVAL_ATTACKS, make_trials, second_system


@pytest.fixture(scope="module")
def two_systems():
    dev_a = make_trials(seed=10)
    dev_b = second_system(dev_a, seed=11)
    eval_a = make_trials(seed=20, attacks=EVAL_ATTACKS)
    eval_b = second_system(eval_a, seed=21)
    return (dev_a, dev_b), (eval_a, eval_b)


def test_fusion_of_two_systems_beats_every_input_rule_on_held_out_trials(two_systems):
    dev, evl = two_systems
    model = train_fusion(dev, ["a", "b"])
    fused = sasv_eers(model.apply(evl), evl[0].key)["sasv_eer"]
    for trials in evl:
        for rule in ("product", "sum"):
            assert fused < sasv_eers(fuse_scores(trials.asv, trials.cm, rule), trials.key)["sasv_eer"], rule
    # every feature contributes in the expected direction: higher cosine or P(bona fide) -> more target
    assert (model.weights[[0, 3]] > 0).all()
    assert model.training["counts"] == {
        k: int((dev[0].key == k).sum()) for k in ("target", "nontarget", "spoof")
    }


def test_fused_score_is_a_calibrated_llr(two_systems):
    dev, _ = two_systems
    model = train_fusion(dev, ["a", "b"])
    llr = model.apply(dev)
    keys = dev[0].key
    # With balanced class weights, a calibrated LLR puts the weighted class means on opposite sides of 0
    # and the weighted mean of P(target | llr) over targets equals the target share 1/2 (the logistic
    # score equation): check the latter, which calibration implies and a mere ranking does not.
    w = sample_weights(keys)
    p = 1.0 / (1.0 + np.exp(-llr))
    assert np.sum(w * p) / np.sum(w) == pytest.approx(KEY_WEIGHTS["target"], abs=0.02)
    assert llr[keys == "target"].mean() > 0 > llr[keys != "target"].mean()


def test_weights_json_round_trip(tmp_path, two_systems):
    dev, evl = two_systems
    model = train_fusion(dev, ["ecapa_aasist/l2norm", "resnet_aasist/nonorm"])
    path = tmp_path / "weights.json"
    model.save(path)
    record = json.loads(path.read_text())
    assert [(f["system"], f["kind"]) for f in record["features"]] == [
        (s, k)
        for s in ("ecapa_aasist/l2norm", "resnet_aasist/nonorm")
        for k in ("asv", "cm_logit", "cm_logp")
    ]
    loaded = FusionModel.load(path)
    assert loaded.systems == model.systems and loaded.bias == model.bias
    np.testing.assert_array_equal(loaded.weights, model.weights)
    np.testing.assert_array_equal(loaded.apply(evl), model.apply(evl))
    assert loaded.training == json.loads(json.dumps(model.training))
    record["format"] = "pickle"
    with pytest.raises(ValueError, match="not a fusion weights record"):
        FusionModel.from_dict(record)


def test_fused_trials_split_into_asv_and_cm_parts(two_systems):
    dev, _ = two_systems
    model = train_fusion(dev, ["a", "b"])
    trials = model.fused_trials(dev)
    np.testing.assert_allclose(trials.fused, model.bias + trials.asv + trials.cm, rtol=0, atol=1e-12)
    # the CM part depends on the test utterance only, like a CM score
    for utt in np.unique(trials.utt)[:20]:
        assert np.unique(trials.cm[trials.utt == utt]).size == 1


def test_mismatched_trials_are_refused(two_systems):
    (a, b), _ = two_systems
    order = np.arange(len(b))
    order[[3, 4]] = order[[4, 3]]
    swapped = TrialScores(
        spk=b.spk[order],
        utt=b.utt[order],
        attack=b.attack[order],
        key=b.key[order],
        fused=b.fused,
        asv=b.asv,
        cm=b.cm,
    )
    if (swapped.utt == a.utt).all() and (swapped.spk == a.spk).all():
        pytest.skip("swapped trials happen to be identical")
    with pytest.raises(TrialMismatchError, match="differ at trial 4"):
        check_same_trials([a, swapped], ["a", "b"])
    short = TrialScores(
        spk=b.spk[:-1], utt=b.utt[:-1], attack=b.attack[:-1], key=b.key[:-1], fused=b.fused[:-1]
    )
    with pytest.raises(TrialMismatchError, match="trials"):
        check_same_trials([a, short], ["a", "b"])
    with pytest.raises(TrialMismatchError):
        train_fusion([a, swapped], ["a", "b"])


def test_sample_weights_give_each_key_its_share():
    keys = np.array(["target"] * 2 + ["nontarget"] * 10 + ["spoof"] * 30)
    w = sample_weights(keys)
    assert w.mean() == pytest.approx(1.0)
    shares = {k: w[keys == k].sum() / w.sum() for k in ("target", "nontarget", "spoof")}
    assert shares == pytest.approx(KEY_WEIGHTS)


def test_cm_features_clip_and_refuse_non_probabilities():
    logit_p, log_p = cm_features(np.array([0.0, 0.5, 1.0]))
    assert np.isfinite(logit_p).all() and np.isfinite(log_p).all()
    assert logit_p[1] == 0.0 and logit_p[0] == pytest.approx(-logit_p[2], rel=1e-8)
    assert log_p[2] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="probabilities"):
        cm_features(np.array([-3.0, 2.0]))
