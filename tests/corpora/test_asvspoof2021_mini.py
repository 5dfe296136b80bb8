"""The ASVspoof 2021 mini corpora: the release's layout, keys the strict readers take, every condition with
both classes in the eval subset as far as the utterances go, the same bytes from the same seed."""

from __future__ import annotations

from collections import Counter

import pytest
import soundfile as sf

from sasv.corpora.asvspoof2021 import LA_CODECS, read_asv_trials, read_cm_key
from sasv.corpora.asvspoof2021_mini import write_df_corpus, write_la_corpus
from sasv.corpora.la_mini import CorpusError, MiniCorpusConfig, plan_corpus


@pytest.fixture(scope="module")
def plan():
    return plan_corpus(MiniCorpusConfig(seed=3, speakers=2, bonafide_per_spk=7, attacks=2))


def test_la_mini_corpus(plan, tmp_path) -> None:
    layout = write_la_corpus(plan, tmp_path)
    assert layout.root == tmp_path / "ASVspoof2021_LA"
    trials = read_cm_key(layout.cm_key("LA"), "LA")
    tests = plan.of("eval", "test")
    assert sorted(t.utt for t in trials) == sorted(u.utt for u in tests)
    assert sorted(p.stem for p in layout.audio_dir("LA").iterdir()) == sorted(t.utt for t in trials)
    info = sf.info(layout.audio("LA", trials[0].utt))
    assert (info.samplerate, info.channels) == (16000, 1)
    eval_bonafide = Counter(t.codec for t in trials if t.subset == "eval" and t.label == "bonafide")
    assert set(eval_bonafide) == set(LA_CODECS), "14 bona fide trials: every codec has one in eval"
    assert {t.subset for t in trials} == {"eval", "progress"}
    asv = read_asv_trials(layout.asv_key(), layout.asv_scores())
    assert Counter(t.key for t in asv) == Counter(t.key for t in plan.trials("eval"))
    codec_of = {t.utt: t.codec for t in trials}
    for t in asv:  # the release's ids: <spk>-<codec>-<transmission>, spoofs LA2021-<trial>
        utt = t.trial.removeprefix("LA2021-").split("-")[0]
        assert t.codec == codec_of[utt] and t.spk.startswith("LA_") and t.spk.split("-")[1] == t.codec
        assert t.trial.startswith("LA2021-") == (t.key == "spoof")
    # targets score above nontargets: the organisers' ASV is a working one
    mean = {
        k: sum(t.score for t in asv if t.key == k) / sum(t.key == k for t in asv)
        for k in ("target", "nontarget")
    }
    assert mean["target"] > mean["nontarget"] + 4


def test_df_mini_corpus_is_the_same_plan_in_df_names(plan, tmp_path) -> None:
    layout = write_df_corpus(plan, tmp_path)
    trials = read_cm_key(layout.cm_key("DF"), "DF")
    assert sorted(t.utt for t in trials) == sorted(
        u.utt.replace("LA_E_", "DF_E_") for u in plan.of("eval", "test")
    )
    assert all((t.vocoder == "bonafide") == (t.label == "bonafide") for t in trials)
    assert not (layout.root / "keys" / "LA").exists()


def test_same_seed_same_bytes_and_only_mini_corpora_are_replaced(plan, tmp_path) -> None:
    first = write_la_corpus(plan, tmp_path / "a").root
    second = write_la_corpus(plan, tmp_path / "b").root
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    write_la_corpus(plan, tmp_path / "a")  # an earlier mini corpus is replaced
    (tmp_path / "c" / "ASVspoof2021_DF").mkdir(parents=True)
    with pytest.raises(CorpusError, match="is not a mini corpus"):
        write_df_corpus(plan, tmp_path / "c")
