import numpy as np
import pytest
import soundfile as sf

from sasv.audio import (
    CLIPPED_FRACTION,
    CLIPPED_LEVEL,
    CM_SAMPLES,
    MIN_SAMPLES,
    NEAR_SILENT_PEAK,
    SEGMENT_SAMPLES,
    AudioError,
    audio_problem,
    cm_input,
    embedding_segments,
    find_suspect_audio,
    read_audio,
    segment_starts,
)


def _write(path, data, sr=16000, subtype="PCM_16"):
    sf.write(str(path), data, sr, subtype=subtype)
    return path


def _junk(path):
    path.write_bytes(b"not audio at all" * 10)
    return path


def test_read_audio_roundtrip_exact(tmp_path):
    x = (np.random.default_rng(0).integers(-16384, 16384, 8000) / 32768).astype(np.float32)
    got = read_audio(_write(tmp_path / "a.flac", x))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.flac", "does not exist"),
        (lambda p: _junk(p / "junk.flac"), "cannot decode"),
        (lambda p: _write(p / "sr.flac", np.zeros(800), sr=8000), "sample rate is 8000"),
        (lambda p: _write(p / "st.flac", np.zeros((800, 2))), "2 channels"),
        (lambda p: _write(p / "nan.wav", np.array([0.1, np.nan, 0.2]), subtype="FLOAT"), "NaN or Inf"),
        (lambda p: _write(p / "empty.wav", np.zeros(0)), "empty"),
    ],
)
def test_read_audio_rejects_bad_files_naming_them(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(AudioError, match=message) as err:
        read_audio(path)
    assert str(path) in str(err.value)


def test_truncated_flac_is_an_error(tmp_path):
    path = _write(tmp_path / "t.flac", np.random.default_rng(1).uniform(-0.5, 0.5, 48000))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(AudioError, match=str(path)):
        read_audio(path)


def test_segments_of_short_utterance_wrap_around():
    wav = np.arange(1000, dtype=np.float32)
    segs = embedding_segments(wav)
    assert segs.shape == (5, SEGMENT_SAMPLES)
    for seg in segs:  # all five start at 0 and continue with the utterance's own beginning
        np.testing.assert_array_equal(seg, np.resize(wav, SEGMENT_SAMPLES))


def test_segments_equally_spaced_over_long_utterance():
    n = 112000
    wav = np.arange(n, dtype=np.float32)
    segs = embedding_segments(wav)
    starts = segment_starts(n)
    assert starts[0] == 0 and starts[-1] == n - SEGMENT_SAMPLES
    np.testing.assert_array_equal(segs[:, 0], starts.astype(np.float32))
    assert np.all(np.diff(segs, axis=1) == 1)


@pytest.mark.parametrize(
    ("extra", "starts"),
    [(2, [0, 0, 1, 1, 2]), (3, [0, 0, 1, 2, 3]), (7, [0, 1, 3, 5, 7]), (0, [0, 0, 0, 0, 0])],
)
def test_fractional_segment_starts_are_truncated(extra, starts):
    """linspace(0, N - 48,240, 5) starts that fall between samples are truncated like the reference's
    ``numpy.linspace(...).astype(int)`` (48,242 samples: 0, 0.5, 1, 1.5, 2 -> 0, 0, 1, 1, 2), not rounded;
    the segments start there."""
    n = SEGMENT_SAMPLES + extra
    assert segment_starts(n).tolist() == starts
    segs = embedding_segments(np.arange(n, dtype=np.float32))
    assert segs[:, 0].tolist() == starts


def test_segment_starts_match_reference(golden):
    io = np.load(golden("ecapa_tdnn") / "io.npz")
    for i in range(3):
        n = max(len(io[f"wav{i}"]), SEGMENT_SAMPLES)
        np.testing.assert_array_equal(segment_starts(n), io[f"seg_starts{i}"])


def test_cm_input_truncates_and_tiles():
    long = np.arange(CM_SAMPLES + 10, dtype=np.float32)
    np.testing.assert_array_equal(cm_input(long), long[:CM_SAMPLES])
    short = np.arange(30000, dtype=np.float32)
    out = cm_input(short)
    assert out.shape == (CM_SAMPLES,)
    np.testing.assert_array_equal(out[30000:60000], short)


def test_cm_input_matches_reference_pad(golden):
    io = np.load(golden("aasist") / "io.npz")
    got = np.stack([cm_input(io[f"wav{i}"]) for i in range(4)])
    np.testing.assert_array_equal(got, io["x_padded"])


def test_audio_that_is_not_a_signal_is_refused_naming_the_file(tmp_path):
    loud = _write(tmp_path / "loud.wav", np.full(8000, 1.5, dtype=np.float32), subtype="FLOAT")
    with pytest.raises(AudioError, match=rf"^{loud}: samples outside \[-1, 1\] \(peak 1.5\)"):
        read_audio(loud)
    short = _write(tmp_path / "short.flac", np.full(300, 0.1, dtype=np.float32))
    with pytest.raises(AudioError, match=rf"^{short}: 300 samples, fewer than the {MIN_SAMPLES}"):
        read_audio(short)
    assert read_audio(_write(tmp_path / "ok.flac", np.full(MIN_SAMPLES, 0.1, dtype=np.float32))).size == 400


def test_suspicious_audio_is_named_by_what_is_wrong(tmp_path):
    rng = np.random.default_rng(1)
    speech = (0.3 * rng.standard_normal(16000)).clip(-0.99, 0.99).astype(np.float32)
    assert audio_problem(speech) is None
    assert audio_problem(np.zeros(16000, dtype=np.float32)) == "digital silence (every sample is 0)"
    assert audio_problem(speech * 1e-5) == "near-silent (peak -100 dBFS)"
    clipped = (speech * 20).clip(-1.0, 1.0)
    assert audio_problem(clipped).startswith("heavily clipped (")
    wav_scp = {
        "silent": str(_write(tmp_path / "s.flac", np.zeros(8000, dtype=np.float32))),
        "speech": str(_write(tmp_path / "v.flac", speech)),
    }
    assert find_suspect_audio(wav_scp) == {"silent": "digital silence (every sample is 0)"}


def test_audio_limits_are_inclusive_where_documented(tmp_path):
    """The limits themselves (found by mutation testing): full scale 1.0 is audio, a peak of exactly
    NEAR_SILENT_PEAK is not near-silent, samples at exactly CLIPPED_LEVEL count as clipped, and exactly
    CLIPPED_FRACTION of them is heavy clipping; the messages' numbers are computed, not approximated."""
    full_scale = np.zeros(1000, dtype=np.float32)
    full_scale[10] = -1.0
    assert read_audio(_write(tmp_path / "full.wav", full_scale, subtype="FLOAT")).min() == -1.0
    short = _write(tmp_path / "short.flac", np.full(300, 0.1, dtype=np.float32))
    with pytest.raises(AudioError, match=r"fewer than the 400 \(25 ms\) the models' front-ends need"):
        read_audio(short)
    quiet = np.zeros(1000)
    quiet[0] = NEAR_SILENT_PEAK
    assert audio_problem(quiet) is None
    assert audio_problem(np.zeros(0)) == "digital silence (every sample is 0)"
    wav = np.full(1000, 0.5)
    wav[:10] = CLIPPED_LEVEL  # exactly 1 %
    assert CLIPPED_FRACTION == 0.01
    assert audio_problem(wav) == "heavily clipped (1.0 % of the samples at full scale)"
    wav[:200] = 1.0
    assert audio_problem(wav) == "heavily clipped (20.0 % of the samples at full scale)"
    wav = np.full(1000, 0.5)
    wav[3:10] = -1.0  # 0.7 %
    assert audio_problem(wav) is None


def test_cm_input_of_one_sample_and_of_other_shapes():
    np.testing.assert_array_equal(cm_input(np.array([0.25], dtype=np.float32)), np.full(CM_SAMPLES, 0.25))
    for bad in (np.zeros((2, 100), dtype=np.float32), np.zeros(0, dtype=np.float32)):
        with pytest.raises(ValueError, match="expected a non-empty 1-D waveform, got shape"):
            cm_input(bad)
