"""`sasv compare_systems`: the paired bootstrap of two systems on the same trials, through the tool."""

from __future__ import annotations

import dataclasses
import json

from sasv.bin import compare_systems
from sasv.scoring.cosine import fuse_scores
from sasv.scoring.score_files import write_score_file
from tests.synthetic_scores import make_trials, second_system


def _systems(tmp_path):
    trials = make_trials(seed=1, n_utts=600, n_speakers=30)
    noisier = second_system(trials, seed=2, asv_noise=0.3)  # same trials, a much worse ASV
    a, b = tmp_path / "a" / "scores_eval.txt", tmp_path / "b" / "scores_eval.txt"
    for path, scores in ((a, trials), (b, noisier)):
        path.parent.mkdir()
        write_score_file(path, scores)
    return trials, a, b


def test_a_worse_system_is_told_apart_and_a_system_from_itself_not(tmp_path, capsys) -> None:
    trials, a, b = _systems(tmp_path)
    out = tmp_path / "cmp.json"
    args = ["--bootstrap", "200", "--json", str(out)]
    assert compare_systems.main([str(a.parent), str(b.parent), *args]) == 0
    printed = capsys.readouterr().out
    assert "| SV-EER |" in printed and "A lower (better)" in printed
    sv = json.loads(out.read_text())["sets"]["eval"]["metrics"]["sv_eer"]
    assert sv["differ"] and sv["difference"] < 0 and sv["interval"][1] < 0
    assert compare_systems.main([str(a), str(a), *args]) == 0  # two score files
    same = json.loads(out.read_text())["sets"]["(file)"]["metrics"]
    assert not any(entry["differ"] for entry in same.values())
    assert "no difference beyond the noise" in capsys.readouterr().out


def test_the_comparison_is_paired(tmp_path) -> None:
    """A tiny shift of every score (far below the noise of the set) must not look like noise-sized
    differences: paired draws cancel what the two systems share."""
    trials, a, _ = _systems(tmp_path)
    nudged = dataclasses.replace(trials, fused=fuse_scores(trials.asv + 1e-4, trials.cm))
    result = compare_systems.compare(
        nudged, trials, ("nudged", "a"), "paper", compare_systems.BootstrapSpec(200), "speaker"
    )
    interval = result["metrics"]["sasv_eer"]["interval"]
    assert interval[1] - interval[0] < 0.01 and not result["metrics"]["sasv_eer"]["differ"]
    assert result["unit"] == "claimed speaker"
