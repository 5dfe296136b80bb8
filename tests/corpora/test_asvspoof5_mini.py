"""The ASVspoof 5 mini corpus (:mod:`sasv.corpora.asvspoof5_mini`): the LA mini corpus's plan in the release
layout, read back by the ASVspoof 5 readers exactly as written."""

from __future__ import annotations

import pytest
import soundfile as sf

from sasv.corpora.asvspoof5_mini import attack_id, file_id, speaker_id, write_asvspoof5_corpus
from sasv.corpora.asvspoof5_protocols import read_enrollment, read_metadata, read_trials
from sasv.corpora.la_mini import CorpusError, MiniCorpusConfig, plan_corpus
from sasv.corpora.protocols import count_trial_keys

CONFIG = MiniCorpusConfig(seed=3, speakers=2, train_speakers=1, enroll_per_spk=2, bonafide_per_spk=2,
                          spoof_per_attack=1, attacks=2, train_utts_per_spk=2)  # fmt: skip


def test_ids_follow_the_release() -> None:
    assert speaker_id("dev", "LA_0123") == "D_0123"
    assert file_id("eval", "LA_E_1234567") == "E_0001234567"
    assert file_id("dev", "LA_D_A1234567") == "D_A0001234567"
    assert [attack_id(s, "A01") for s in ("train", "dev", "eval")] == ["A01", "A09", "A11"]
    assert attack_id("eval", "A19") == "A29" and attack_id("dev", "-") == "bonafide"


def test_written_corpus_reads_back_in_the_release_layout(tmp_path) -> None:
    plan = plan_corpus(CONFIG)
    layout = write_asvspoof5_corpus(plan, tmp_path)
    assert layout.root == tmp_path / "ASVspoof5"
    for split in ("train", "dev", "eval"):
        entries = read_metadata(layout.protocol("metadata", split))
        assert len(entries) == len(plan.cm_entries(split))
        assert all(layout.audio(split, e.utt).is_file() for e in entries)
        low, high = {"train": (1, 8), "dev": (9, 16), "eval": (17, 32)}[split]
        assert all(low <= int(e.attack[1:]) <= high for e in entries if e.label == "spoof")
    for split in ("dev", "eval"):
        trials = read_trials(layout.protocol("trials", split))
        assert count_trial_keys(trials) == count_trial_keys(plan.trials(split))
        enrol = read_enrollment(layout.protocol("enrollment", split))
        assert sorted(enrol) == sorted(speaker_id(split, s) for s in plan.speakers[split])
        assert all(layout.audio(split, f).is_file() for files in enrol.values() for f in files)
    info = sf.info(str(layout.audio("eval", trials[0].utt)))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    write_asvspoof5_corpus(plan, tmp_path)  # its own folder: replaced
    (tmp_path / "other" / "ASVspoof5").mkdir(parents=True)
    with pytest.raises(CorpusError, match="is not a mini corpus"):
        write_asvspoof5_corpus(plan, tmp_path / "other")


def test_make_mini_corpus_tool_writes_either_layout(tmp_path, capsys) -> None:
    from sasv.__main__ import main as sasv_main

    argv = ["make_mini_corpus", "--out", str(tmp_path), "--speakers", "2", "--bonafide_per_spk", "1",
            "--enroll_per_spk", "1", "--attacks", "1", "--train_utts_per_spk", "1"]  # fmt: skip
    assert sasv_main([*argv, "--corpus", "asvspoof5"]) == 0
    assert (tmp_path / "ASVspoof5" / "ASVspoof5.dev.track_2.trial.tsv").is_file()
    assert not (tmp_path / "LA").exists()
    assert sasv_main(argv) == 0 and (tmp_path / "LA").is_dir()
