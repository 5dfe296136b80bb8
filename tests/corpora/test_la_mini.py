from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sasv.audio import SAMPLE_RATE, read_audio
from sasv.corpora.la import GENDERS, SPLITS, TRIAL_SPLITS, LALayout
from sasv.corpora.la_mini import (
    MARKER,
    CorpusError,
    MiniCorpusConfig,
    make_mini_corpus,
    plan_corpus,
    render,
    write_corpus,
)
from sasv.corpora.protocols import (
    count_trial_keys,
    read_cm_protocol,
    read_enrollment,
    read_enrollments,
    read_sasv_trials,
    true_speakers,
)
from tests.conftest import tool

REPO = Path(__file__).resolve().parents[2]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("mini")
    start = time.perf_counter()
    make_mini_corpus(out, MiniCorpusConfig(seed=0))
    return out / "LA", time.perf_counter() - start


def test_layout_is_that_of_la_zip(corpus):
    root, _ = corpus
    layout = LALayout(root)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [
            MARKER,
            "ASVspoof2019_LA_asv_protocols",
            "ASVspoof2019_LA_cm_protocols",
            "ASVspoof2019_LA_dev",
            "ASVspoof2019_LA_eval",
            "ASVspoof2019_LA_train",
        ]
    )
    assert sorted(p.name for p in layout.asv_protocols.iterdir()) == sorted(
        [f"ASVspoof2019.LA.asv.{s}.{g}.trn.txt" for s in TRIAL_SPLITS for g in GENDERS]
        + [f"ASVspoof2019.LA.asv.{s}.gi.trl.txt" for s in TRIAL_SPLITS]
    )
    assert sorted(p.name for p in layout.cm_protocols.iterdir()) == [
        "ASVspoof2019.LA.cm.dev.trl.txt",
        "ASVspoof2019.LA.cm.eval.trl.txt",
        "ASVspoof2019.LA.cm.train.trn.txt",
    ]
    pattern = {"train": r"LA_T_\d{7}", "dev": r"LA_D_A?\d{7}", "eval": r"LA_E_A?\d{7}"}
    for split in SPLITS:
        names = [p.name for p in layout.audio_dir(split).iterdir()]
        assert names and all(re.fullmatch(pattern[split] + r"\.flac", n) for n in names)


def test_every_protocol_resolves(corpus):
    root, _ = corpus
    layout = LALayout(root)
    speakers = {}
    for split in SPLITS:
        cm = read_cm_protocol(layout.cm_protocol(split))
        assert all(layout.audio_path(split, e.utt).is_file() for e in cm)
        assert {e.attack for e in cm if e.label == "spoof"} <= {f"A{i:02d}" for i in range(1, 20)}
        speakers[split] = {e.spk for e in cm}
        assert all(re.fullmatch(r"LA_0\d{3}", s) for s in speakers[split])
    assert not (speakers["train"] & speakers["dev"] or speakers["dev"] & speakers["eval"])
    assert not speakers["train"] & speakers["eval"]
    for split, attacks in (("dev", {"A01", "A02", "A03"}), ("eval", {"A07", "A08", "A09"})):
        trials = read_sasv_trials(layout.trial_list(split))
        enroll = read_enrollments(layout.enrollment_lists(split))
        female, male = (read_enrollment(layout.enrollment_list(split, g)) for g in GENDERS)
        assert len(female) == len(male) == 2
        assert all(layout.audio_path(split, u).is_file() for utts in enroll.values() for u in utts)
        assert all(layout.audio_path(split, t.utt).is_file() for t in trials)
        assert {t.spk for t in trials} == set(enroll) == speakers[split]
        assert {t.attack for t in trials if t.key == "spoof"} == attacks
        counts = count_trial_keys(trials)
        assert counts == {"target": 40, "nontarget": 120, "spoof": 24}
        # every enrolled speaker has all three kinds of trial
        for spk in enroll:
            assert {t.key for t in trials if t.spk == spk} == {"target", "nontarget", "spoof"}
        # trials agree with the CM protocol: spoofs are spoofs of their target speaker
        true_speakers(trials, read_cm_protocol(layout.cm_protocol(split)))


def test_audio_format_durations_and_levels(corpus):
    root, _ = corpus
    durations = []
    for path in sorted(root.rglob("*.flac")):
        info = sf.info(str(path))
        assert (info.format, info.subtype, info.samplerate, info.channels) == (
            "FLAC",
            "PCM_16",
            SAMPLE_RATE,
            1,
        )
        wav = read_audio(path).astype(np.float64)
        assert np.abs(wav).max() <= 0.5
        assert np.array_equal(wav * 32768, np.round(wav * 32768))
        durations.append(len(wav) / SAMPLE_RATE)
    durations = np.array(durations)
    assert durations.min() <= 0.8 + 1e-9 and durations.max() > 8.0
    assert (durations < 1.0).sum() >= 4 and (durations < 3.0).sum() > 10


def test_default_size_is_fast(corpus):
    root, seconds = corpus
    assert seconds < 20, f"mini corpus took {seconds:.1f} s"
    assert 60 <= len(read_cm_protocol(LALayout(root).cm_protocol("dev"))) <= 100


def test_same_seed_same_bytes_other_seed_other_bytes(corpus, tmp_path):
    root, _ = corpus
    make_mini_corpus(tmp_path / "same", MiniCorpusConfig(seed=0))
    assert _files(tmp_path / "same" / "LA") == _files(root)
    make_mini_corpus(tmp_path / "other", MiniCorpusConfig(seed=1))
    mine, other = _files(root), _files(tmp_path / "other" / "LA")
    flacs = [set(v for k, v in files.items() if k.endswith(".flac")) for files in (mine, other)]
    assert not flacs[0] & flacs[1]
    assert mine[".mini_corpus.json"] != other[".mini_corpus.json"]


def test_spoofs_imitate_their_target():
    """A spoof's long-term spectrum is closer to its target's bona fide speech than to other speakers'."""
    plan = plan_corpus(MiniCorpusConfig(seed=3, speakers=4, bonafide_per_spk=3, spoof_per_attack=1))

    def profile(u) -> np.ndarray:
        wav = render(plan, u).astype(np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(wav, 512)[::256] * np.hanning(512)
        spec = np.log(np.abs(np.fft.rfft(frames)) ** 2 + 1e-3).mean(axis=0)
        return spec - spec.mean()

    tests = plan.of("dev", "test")
    centroid = {
        s: np.mean([profile(u) for u in tests if u.spk == s and u.bonafide], axis=0)
        for s in plan.speakers["dev"]
    }
    hits = 0
    spoofs = [u for u in tests if not u.bonafide]
    for u in spoofs:
        p = profile(u)
        nearest = min(centroid, key=lambda s: np.linalg.norm(centroid[s] - p))
        hits += nearest == u.spk
    assert hits >= 0.75 * len(spoofs)


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "LA").mkdir()
    (tmp_path / "LA" / "keep.txt").write_text("x")
    with pytest.raises(CorpusError, match="is not a mini corpus"):
        write_corpus(plan_corpus(MiniCorpusConfig(speakers=2, bonafide_per_spk=1)), tmp_path)
    assert (tmp_path / "LA" / "keep.txt").exists()


@pytest.mark.parametrize(
    "kwargs", [{"speakers": 1}, {"attacks": 0}, {"attacks": 7}, {"enroll_per_spk": 0}, {"train_speakers": 0}]
)
def test_bad_config(kwargs):
    with pytest.raises(CorpusError):
        MiniCorpusConfig(**kwargs).check()


def test_cli_prints_summary(tmp_path):
    args = [
        "--out",
        str(tmp_path),
        "--seed",
        "5",
        "--speakers",
        "2",
        "--bonafide-per-spk",
        "2",
        "--attacks",
        "1",
    ]
    out = subprocess.run(
        [*tool("make_mini_corpus"), *args],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "dev  : 2 speakers (1 F, 1 M)" in out.stdout
    assert "trials target=4 nontarget=4 spoof=4" in out.stdout
    bad = subprocess.run(
        [
            *tool("make_mini_corpus"),
            "--out",
            str(tmp_path),
            "--speakers",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "ERROR: --speakers must be at least 2 (one female and one male enrolment list)"
    ]
