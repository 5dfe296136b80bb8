import numpy as np
import pytest
import torch

from sasv.corpora.datadir import DataDir
from sasv.corpora.protocols import Trial
from sasv.reports.records import metrics_record
from sasv.scoring.evaluate import MissingScoresError, compute_trial_scores


def _data():
    rng = np.random.default_rng(0)
    enroll = {"A": ["a1", "a2"], "B": ["b1"]}
    trials = [
        Trial("A", "t1", "bonafide", "target"),
        Trial("A", "t2", "bonafide", "nontarget"),
        Trial("A", "t3", "A07", "spoof"),
        Trial("B", "t2", "bonafide", "target"),
        Trial("B", "t1", "bonafide", "nontarget"),
        Trial("B", "t4", "A08", "spoof"),
    ]
    utts = ["a1", "a2", "b1", "t1", "t2", "t3", "t4"]
    emb = {u: rng.normal(size=(6, 8)).astype(np.float32) for u in utts}
    cm = {u: float(p) for u, p in zip(["t1", "t2", "t3", "t4"], [0.9, 0.8, 0.1, 0.2], strict=True)}
    data = DataDir(wav_scp={u: f"/x/{u}.flac" for u in utts}, utt2spk={}, enroll=enroll, trials=trials)
    return data, emb, cm


@pytest.mark.parametrize("norm", ["nonorm", "l2norm"])
def test_scores_follow_reference_semantics(norm):
    data, emb, cm = _data()
    out = compute_trial_scores(data, emb, cm, norm)

    def rows(u):
        r = torch.from_numpy(emb[u])
        return torch.nn.functional.normalize(r, dim=1) if norm == "l2norm" else r

    cos = torch.nn.CosineSimilarity(dim=1, eps=1e-6)
    for i, t in enumerate(data.trials):
        enrol = torch.cat([rows(u) for u in data.enroll[t.spk]]).mean(0, keepdim=True)
        test = rows(t.utt).mean(0, keepdim=True)
        expected = cos(enrol, test).item()
        assert out.asv[i] == pytest.approx(expected, abs=1e-6)
        assert out.cm[i] == pytest.approx(cm[t.utt], rel=1e-6)
        assert out.fused[i] == pytest.approx(cm[t.utt] * (expected + 1) / 2, abs=1e-6)
    assert list(out.key) == [t.key for t in data.trials]


def test_missing_embedding_or_cm_score_is_named():
    data, emb, cm = _data()
    del emb["t3"]
    with pytest.raises(MissingScoresError, match="t3"):
        compute_trial_scores(data, emb, cm, "nonorm", emb_source="exp/x/xvector.scp")
    data, emb, cm = _data()
    del cm["t4"]
    with pytest.raises(MissingScoresError, match="t4"):
        compute_trial_scores(data, emb, cm, "nonorm")


def test_evaluate_counts_and_eers():
    data, emb, cm = _data()
    res = metrics_record(compute_trial_scores(data, emb, cm, "l2norm", "sum"))
    assert res["counts"]["target"] == 2 and res["counts"]["spoof"] == 2
    assert all(0.0 <= res[k] <= 1.0 for k in ("sasv_eer", "sv_eer", "spf_eer", "cm_eer"))
    assert res["min_a_dcf[paper]"] is not None and set(res["spf_eer_by_attack"]) == {"A07", "A08"}


def test_asnorm_path_uses_the_cohort():
    from sasv.scoring.asnorm import as_norm

    data, emb, cm = _data()
    rng = np.random.default_rng(1)
    cohort = {f"c{i}": rng.normal(size=(6, 8)).astype(np.float32) for i in range(10)}
    out = compute_trial_scores(data, emb, cm, "nonorm", "sum", cohort=cohort, top_k=4)
    plain = compute_trial_scores(data, emb, cm, "nonorm", "sum")
    speakers = sorted({t.spk for t in data.trials})
    utts = sorted({t.utt for t in data.trials})
    from sasv.scoring.cosine import speaker_model, utterance_vector

    enrol = np.stack([speaker_model([emb[u] for u in data.enroll[s]], "nonorm") for s in speakers])
    test = np.stack([utterance_vector(emb[u], "nonorm") for u in utts])
    coh = np.stack([utterance_vector(r, "nonorm") for r in cohort.values()])
    spk_idx = [speakers.index(t.spk) for t in data.trials]
    utt_idx = [utts.index(t.utt) for t in data.trials]
    np.testing.assert_allclose(out.asv, as_norm(enrol, test, coh, spk_idx, utt_idx, 4))
    np.testing.assert_allclose(out.fused, out.asv + out.cm)
    assert not np.allclose(out.asv, plain.asv)
