"""Training augmentation: held to clovaai/voxceleb_trainer's AugmentWAV run on the same files and scripted
draws (tests/fixtures/voxceleb_trainer_augment.npz, tests/fixtures/README.md); on lists prepared from the
synthetic MUSAN / RIRS_NOISES layouts each kind alone does what it should (measured), everything is a
function of the rng, and missing lists are errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sasv.audio import SAMPLE_RATE, AudioError
from sasv.bin.prepare_augmentation import main as prepare_augmentation
from sasv.corpora.datadir import DataDirError
from sasv.corpora.musan_rirs_mini import make_musan_and_rirs
from sasv.corpora.protocols import ProtocolError
from sasv.corpora.synthvoice import draw_voice, synthesize
from sasv.train.augment import (
    BABBLE_FILES,
    DEFAULT_WEIGHTS,
    KINDS,
    POWER_FLOOR,
    SNR_RANGES,
    AudioFile,
    AugmentationLists,
    Augmenter,
    Mix,
    bench_augmentation,
    noise_start,
    read_crop,
    read_segment,
)
from tests.oracles import record_voxceleb_trainer as reference

CROP = 2 * SAMPLE_RATE
FIXTURE = np.load(Path(__file__).resolve().parents[1] / "fixtures" / "voxceleb_trainer_augment.npz")
META = json.loads(str(FIXTURE["meta"]))
# voxceleb_trainer's augtype (random.randint(0, 4)) and its noise types, as kinds here
AUGTYPES = {0: "clean", 1: "reverb", 2: "music", 3: "babble", 4: "noise"}


@pytest.fixture(scope="module")
def reference_files(tmp_path_factory) -> dict[str, AudioFile]:
    """The recorder's files, written again from their seeds (checked against the recorded sha256), by
    base name."""
    root = tmp_path_factory.mktemp("voxceleb_trainer")
    assert reference.write_files(root) == META["files"], "the generator drifted: record the fixture again"
    return {
        Path(relative).name: AudioFile(str(root / relative), sf.info(root / relative).frames)
        for relative in META["files"]
    }


@pytest.mark.parametrize("name", sorted(META["cases"]))
def test_voxceleb_trainers_output_from_the_same_draws(reference_files, name: str) -> None:
    """The reference's training example (its crop, then AugmentWAV) from the scripted draws, and ours
    rendered from the same draws: SNR gains with the 1e-4 power floor, reverb cut from sample 0, noise
    segments placed and wrapped as loadWAV places them, nothing rescaled; equal to float32 rounding."""
    case = META["cases"][name]
    draws = {kind: [v for k, _, v in case["calls"] if k == kind] for kind in ("random", "randint")}
    n = META["crop_samples"]
    utterance = reference_files[Path(reference.TRAIN_LIST[case["script"]["index"]].split()[1]).name]
    crop = read_segment(utterance, n, noise_start(utterance.frames, n, draws["random"][0]))
    kind = AUGTYPES[draws["randint"][0]]
    if kind == "clean":
        mix = Mix(kind)
    elif kind == "reverb":
        mix = Mix(kind, (reference_files[case["script"]["choice"][0]],))
    else:
        (names,) = case["script"]["sample"]
        mix = Mix(
            kind,
            tuple(reference_files[f] for f in names),
            tuple(draws["random"][1:]),
            tuple(case["script"]["uniform"]),
        )
    ours = Augmenter(AugmentationLists((), (), (), ()), {"clean": 1.0}).render(mix, crop)
    expected = FIXTURE[name]
    assert ours.dtype == np.float32 and ours.shape == expected.shape == (n,)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-7 * float(np.max(np.abs(expected))))


def test_the_draw_ranges_are_voxceleb_trainers() -> None:
    """The numbers the reference asked its ``random`` for: 5 kinds drawn uniformly, 3-7 babble files,
    each noise type's SNR range."""
    calls = [call for case in META["cases"].values() for call in case["calls"]]
    assert {tuple(args) for name, args, _ in calls if name == "randint" and args[0] == 0} == {(0, 4)}
    assert len(KINDS) == 5 and set(DEFAULT_WEIGHTS.values()) == {1.0}
    counts = {tuple(args) for name, args, _ in calls if name == "randint" and args[0] != 0}
    assert counts == {(1, 1), BABBLE_FILES}
    by_kind: dict[str, set] = {}
    for case in META["cases"].values():
        kind = AUGTYPES[[v for k, _, v in case["calls"] if k == "randint"][0]]
        by_kind.setdefault(kind, set()).update(tuple(a) for k, a, _ in case["calls"] if k == "uniform")
    assert {k: v for k, v in by_kind.items() if v} == {
        k: {SNR_RANGES[k]} for k in ("noise", "music", "babble")
    }


def test_the_power_floor_raises_the_noise_of_a_quiet_crop() -> None:
    """A crop at -50 dBFS gets its noise as if it were at -40 dBFS (10 log10(1e-5 + 1e-4) = -39.6)."""
    from sasv.train.augment import add_noises

    quiet = np.full(1000, np.sqrt(1e-5), dtype=np.float32)
    noise = np.ones(1000, dtype=np.float32)
    out = add_noises(quiet, [noise], [0.0])
    added = float(np.mean((out.astype(np.float64) - quiet) ** 2))
    assert added == pytest.approx((1e-5 + POWER_FLOOR) / (1.0 + POWER_FLOOR), rel=1e-5)


@pytest.fixture(scope="module")
def lists_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("augment")
    corpora = make_musan_and_rirs(work / "corpora", seed=0)
    argv = ["--musan_root", corpora.musan_root, "--rirs_root", corpora.rirs_root, "--out", work / "data"]
    assert prepare_augmentation([str(a) for a in argv]) == 0
    return work / "data"


@pytest.fixture(scope="module")
def lists(lists_dir) -> AugmentationLists:
    return AugmentationLists.from_dirs(lists_dir / "musan", lists_dir / "rirs")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """A 2 s speech-like crop at peak 0.1: quiet enough that no mix below needs rescaling."""
    rng = np.random.default_rng(7)
    return (0.1 * synthesize(draw_voice(rng, "male"), CROP, rng)).astype(np.float32)


def snr_db(clean: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed.astype(np.float64) - clean
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2)))


def test_lists_from_the_synthetic_layout(lists) -> None:
    assert (len(lists.noise), len(lists.music), len(lists.speech), len(lists.rirs)) == (4, 4, 4, 12)
    assert sorted({f.frames for f in lists.noise}) == [SAMPLE_RATE, 4 * SAMPLE_RATE]  # 1 s files wrap
    assert all(Path(f.path).is_file() and f.frames == sf.info(f.path).frames for f in lists.rirs)


def test_clean_is_identical(lists, speech) -> None:
    out = Augmenter(lists, {"clean": 1.0})(speech, np.random.default_rng(0))
    assert out.dtype == np.float32 and np.array_equal(out, speech) and out is not speech


def test_reverb_keeps_the_length_delays_by_the_onset_and_spreads_energy(lists) -> None:
    """The first samples of the full convolution (voxceleb_trainer's cut): each click reappears at its
    place plus the RIR's direct-path delay, with a reverberant tail."""
    clicks = np.zeros(CROP, dtype=np.float32)
    clicks[[1000, 20000]] = 0.5, -0.5
    augment = Augmenter(lists, {"reverb": 1.0})
    for seed in range(6):
        mix = augment.draw(np.random.default_rng(seed))
        onset = int(np.argmax(np.abs(sf.read(mix.files[0].path)[0])))
        out = augment(clicks, np.random.default_rng(seed))
        assert out.shape == clicks.shape and out.dtype == np.float32
        assert int(np.argmax(np.abs(out))) in (1000 + onset, 20000 + onset), "delayed by the RIR's onset"
        assert np.sign(out[1000 + onset]) == 1 and np.sign(out[20000 + onset]) == -1
        energy = out.astype(np.float64) ** 2
        spread = 1 - (energy[1000 + onset] + energy[20000 + onset]) / energy.sum()
        assert spread > 0.2, f"seed {seed}: only {spread:.0%} of the energy in the reverberant tail"
        assert np.abs(out[: 1000 + onset]).max() < 1e-6, "nothing before the first click's direct path"


@pytest.mark.parametrize("kind", ["noise", "music", "babble"])
@pytest.mark.parametrize("snr", [0.0, 7.5, 15.0])
def test_additive_kinds_hit_the_forced_snr(lists, speech, kind: str, snr: float) -> None:
    """The drawn SNR, less what the power floor adds to the crop's power (the noises are louder than the
    floor: their own floor moves the SNR up by < 0.15 dB)."""
    augment = Augmenter(lists, {kind: 1.0}, snr_ranges={kind: (snr, snr)}, babble_files=(1, 1))
    power = float(np.mean(speech.astype(np.float64) ** 2))
    floored = snr - 10 * np.log10(1 + POWER_FLOOR / power)
    assert floored < snr - 0.1  # the crop is quiet enough for the floor to show
    for seed in range(4):
        out = augment(speech, np.random.default_rng(seed))
        assert out.shape == speech.shape and out.dtype == np.float32
        assert floored - 0.01 < snr_db(speech, out) < floored + 0.15


def test_babble_overlaps_several_speech_files(lists, speech) -> None:
    """Three files at 15 dB each: their powers add up, about 15 - 10 log10(3) = 10.2 dB in all."""
    augment = Augmenter(lists, {"babble": 1.0}, snr_ranges={"babble": (15.0, 15.0)}, babble_files=(3, 3))
    measured = [snr_db(speech, augment(speech, np.random.default_rng(seed))) for seed in range(4)]
    assert all(abs(m - 10.23) < 1.5 for m in measured), measured
    default = Augmenter(lists, {"babble": 1.0})
    measured = [snr_db(speech, default(speech, np.random.default_rng(seed))) for seed in range(8)]
    assert all(0 < m < 20 for m in measured), measured


def test_short_noise_files_wrap(lists) -> None:
    short = next(f for f in lists.noise if f.frames == SAMPLE_RATE)
    crop = read_crop(short, CROP + 500, np.random.default_rng(0))
    assert crop.shape == (CROP + 500,)
    np.testing.assert_array_equal(crop[:SAMPLE_RATE], crop[SAMPLE_RATE : 2 * SAMPLE_RATE])


def test_output_is_not_rescaled(lists) -> None:
    """As voxceleb_trainer: a loud mix goes to the model beyond full scale (floats, no clipping)."""
    loud = np.sign(np.sin(np.arange(CROP) / 20.0)).astype(np.float32)  # a full-scale square wave
    augment = Augmenter(lists, {"noise": 1.0}, snr_ranges={"noise": (0.0, 0.0)})
    out = augment(loud, np.random.default_rng(0))
    assert np.abs(out).max() > 1.5


def test_same_rng_same_output_different_rng_different_output(lists, speech) -> None:
    augment = Augmenter(lists, DEFAULT_WEIGHTS)
    for seed in range(10):
        first = augment(speech, np.random.default_rng([seed, 3]))
        np.testing.assert_array_equal(first, augment(speech, np.random.default_rng([seed, 3])))
    for kind in ("noise", "music", "babble"):
        one = Augmenter(lists, {kind: 1.0})
        outs = [one(speech, np.random.default_rng(seed)) for seed in range(2)]
        assert not np.array_equal(*outs), kind


def test_kinds_are_drawn_by_weight(lists) -> None:
    augment = Augmenter(lists, {**DEFAULT_WEIGHTS, "clean": 2.0, "music": 0.0})
    drawn = [augment.draw_kind(np.random.default_rng([seed, 1])) for seed in range(1200)]
    counts = {kind: drawn.count(kind) for kind in KINDS}
    assert counts["music"] == 0
    assert abs(counts["clean"] - 480) < 70, counts  # 2/5 of 1200: 4 binomial sd
    assert all(abs(counts[k] - 240) < 56 for k in ("reverb", "noise", "babble")), counts


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"clean": 1.0, "noize": 1.0}, "unknown kind 'noize'"),
        ({"clean": 1.0, "reverb": -0.5}, "reverb is -0.5"),
        ({"clean": 1.0, "music": float("nan")}, "music is nan"),
        ({"clean": 0.0, "reverb": 0.0}, "all zero"),
        ({}, "all zero"),
    ],
)
def test_bad_weights(lists, weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Augmenter(lists, weights)


def test_a_kind_without_files_or_a_bad_snr_range(lists) -> None:
    empty = AugmentationLists(lists.noise, lists.music, (), lists.rirs)
    Augmenter(empty, {"clean": 1.0, "babble": 0.0})
    with pytest.raises(ValueError, match="babble has weight but the speech list is empty"):
        Augmenter(empty, {"clean": 1.0, "babble": 1.0})
    with pytest.raises(ValueError, match="snr_ranges: reverb"):
        Augmenter(lists, {"noise": 1.0}, snr_ranges={"reverb": (0.0, 1.0)})


def test_missing_lists_are_one_line_errors_naming_them(lists_dir, tmp_path) -> None:
    data = tmp_path / "data"
    shutil.copytree(lists_dir, data)
    (data / "musan" / "music" / "wav.scp").unlink()
    with pytest.raises(DataDirError) as e:
        AugmentationLists.from_dirs(data / "musan", data / "rirs")
    assert str(e.value).startswith(f"{data / 'musan' / 'music' / 'wav.scp'}: MUSAN music list does not exist")
    assert "\n" not in str(e.value)
    with pytest.raises(DataDirError, match=f"^{re.escape(str(tmp_path / 'absent'))}: RIR folder does not"):
        AugmentationLists.from_dirs(lists_dir / "musan", tmp_path / "absent")
    (data / "rirs" / "wav.scp").write_text("")
    with pytest.raises(ProtocolError, match="wav.scp: file is empty"):
        AugmentationLists.from_dirs(lists_dir / "musan", data / "rirs")


def test_unusable_listed_files_are_errors_naming_them(lists_dir, tmp_path) -> None:
    absent, stereo = tmp_path / "absent.wav", tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((800, 2), dtype=np.float32), SAMPLE_RATE)
    for path, message in [(absent, "augmentation file does not exist"), (stereo, "2 channel(s)")]:
        rirs = tmp_path / "rirs"
        rirs.mkdir(exist_ok=True)
        (rirs / "wav.scp").write_text(f"r1 {path}\n")
        with pytest.raises(AudioError, match=f"^{re.escape(str(path))}: .*{re.escape(message)}"):
            AugmentationLists.from_dirs(lists_dir / "musan", rirs)
    changed = AudioFile(str(stereo.with_name("short.wav")), 4 * SAMPLE_RATE)  # the header promised more
    sf.write(changed.path, np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="changed since the augmentation lists were read"):
        read_crop(changed, CROP, np.random.default_rng(0))


def test_bad_input_waveform(lists) -> None:
    with pytest.raises(ValueError, match="1-D waveform"):
        Augmenter(lists, {"clean": 1.0})(np.zeros((2, 100), dtype=np.float32), np.random.default_rng(0))


def test_throughput_is_printed_not_asserted(lists, tmp_path) -> None:
    """Crops per second of decode + crop + augmentation (bench/augmentation.py measures it properly)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        path = tmp_path / f"utt{i}.flac"
        sf.write(path, 0.5 * synthesize(draw_voice(rng, "male"), 3 * SAMPLE_RATE, rng), SAMPLE_RATE)
        paths.append(str(path))
    rate = bench_augmentation(Augmenter(lists, DEFAULT_WEIGHTS), paths, CROP, examples=60)
    print(f"\naugmentation, default mix: {rate:.0f} crops/s in one process (2 s crops)")
    assert rate > 0
