"""The corpus registry: every record complete and true to the code it names (its stage-1 tool, mini corpus,
download, metrics), and a corpus added as one more record answered by ``sasv corpus`` and run by the stage
scripts with nothing else changed (they hold no case per corpus)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sasv.__main__ import TOOLS
from sasv.__main__ import main as sasv_main
from sasv.bin.make_mini_corpus import main as make_mini_corpus
from sasv.corpora.la_mini import MiniCorpusConfig, plan_corpus
from sasv.corpora.registry import CORPORA, DEFAULT_CORPUS, Corpus, CorpusError, get_corpus, prepared_benchmark
from sasv.markers import PREPARED_MARKER
from sasv.metrics.detection_costs import A_DCF_COST_MODELS
from sasv.reports.records import BENCHMARK_METRICS, BENCHMARK_TITLES, MetricChoice
from tests.conftest import REPO_ROOT

SCRIPTS = ("run_spk_ebd_extract.sh", "run_train_cm.sh", "utils/corpus.sh")
TINY = MiniCorpusConfig(speakers=2, enroll_per_spk=1, bonafide_per_spk=1, attacks=1, train_utts_per_spk=1)


def ask(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What ``sasv corpus ARGV`` prints (it must succeed)."""
    assert sasv_main(["corpus", *argv]) == 0
    return capsys.readouterr().out.rstrip("\n")


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_every_record_is_complete(name: str, capsys) -> None:
    corpus = CORPORA[name]
    assert corpus.name == name and corpus.title and corpus.folder
    assert corpus.prepare_tool in TOOLS
    assert callable(corpus.mini_corpus_writer())
    assert corpus.sets
    if corpus.cm_only:  # a countermeasure benchmark: no SASV scoring, its own stage-4 tool
        assert not (corpus.a_dcf_models or corpus.tandem or corpus.track1 or corpus.official_files)
        assert name not in BENCHMARK_METRICS and corpus.cm_evaluation in TOOLS
    else:
        assert corpus.a_dcf_models and set(corpus.a_dcf_models) <= set(A_DCF_COST_MODELS)
        assert BENCHMARK_METRICS[name] == MetricChoice(corpus.a_dcf_models, corpus.tandem, corpus.track1)
        assert not corpus.cm_evaluation
    assert BENCHMARK_TITLES[name] == corpus.title
    if corpus.download:
        assert os.access(REPO_ROOT / corpus.download, os.X_OK), corpus.download
    # the prepare tool takes --root and the corpus's own stage-1 options
    with pytest.raises(SystemExit):
        sasv_main([corpus.prepare_tool, "--help"])
    usage = capsys.readouterr().out
    for option in ("root", *corpus.stage1_options):
        assert f"--{option}" in usage, option


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_a_mini_corpus_prepares_as_its_benchmark(name: str, tmp_path) -> None:
    """The record's mini-corpus writer makes a tree its stage-1 tool reads, whose data dirs record the
    corpus's name: what decides every later stage's metrics and files."""
    corpus = CORPORA[name]
    layout = corpus.mini_corpus_writer()(plan_corpus(TINY), tmp_path / "corpus")
    out = tmp_path / "data"
    argv = [corpus.prepare_tool, "--root", str(layout.root), "--out", str(out), "--audio_check", "false"]
    assert sasv_main(argv) == 0
    trial_dirs = [p.parent for p in out.glob(f"*/{PREPARED_MARKER}")]
    assert sorted(p.name for p in trial_dirs) == sorted(corpus.sets)
    for data_dir in trial_dirs:
        assert json.loads((data_dir / PREPARED_MARKER).read_text())["benchmark"] == name
        assert prepared_benchmark(data_dir) == name


def test_make_mini_corpus_writes_every_registered_corpus(tmp_path, capsys) -> None:
    sizes = ["--speakers", "2", "--enroll_per_spk", "1", "--bonafide_per_spk", "1", "--attacks", "1"]
    assert make_mini_corpus(["--out", str(tmp_path / "default"), *sizes]) == 0
    assert (tmp_path / "default" / "LA").is_dir(), f"the default corpus is {DEFAULT_CORPUS}"
    with pytest.raises(SystemExit):
        make_mini_corpus(["--help"])
    assert re.search(r"--corpus \{(.*)\}", capsys.readouterr().out).group(1).split(",") == sorted(CORPORA)


def test_the_default_corpus_is_spelled_once() -> None:
    """DEFAULT_CORPUS is the default of every tool and of an unmarked data dir; the scripts' --corpus default
    (what their --help shows) is the same corpus."""
    assert DEFAULT_CORPUS in CORPORA
    for script in SCRIPTS[:2]:
        default = re.search(r"^corpus=(\S+)", (REPO_ROOT / script).read_text(), re.M).group(1)
        assert default == DEFAULT_CORPUS, script
    pattern = re.compile(r"""["'](la|asvspoof5)["']""")
    for module in sorted((REPO_ROOT / "sasv").rglob("*.py")):
        if module.name in ("registry.py",) or module.parent.name == "corpora":
            continue
        spelled = [
            line
            for line in module.read_text().splitlines()
            if pattern.search(line.split("#")[0]) and "prepared.json" not in line
        ]
        # the benchmark each prepare tool records, its own corpus's name
        allowed = {"prepare_la.py": 1, "prepare_asvspoof5.py": 1}
        assert len(spelled) <= allowed.get(module.name, 0), f"{module}: {spelled}"


def test_the_scripts_hold_no_case_per_corpus() -> None:
    """The stage scripts name no corpus outside their comments and help: they ask ``sasv corpus``."""
    for script in SCRIPTS:
        text = (REPO_ROOT / script).read_text()
        text = re.sub(r'help_message="[^"]*"', "", text)  # the help text may name corpora
        code = [line.split("#")[0] for line in text.splitlines()]
        named = [line for line in code if re.search(r"\b(asvspoof5|prepare_(?!tool)\w+|download_la)\b", line)]
        branches = [line for line in code if re.search(r'case "\$\{corpus\}"|"\$\{corpus\}" !?=', line)]
        assert not named and not branches, f"{script}: {named + branches}"


def test_an_unknown_corpus_names_the_choices(monkeypatch) -> None:
    for names in (["la"], ["la", "asvspoof5"], ["la", "asvspoof5", "asvspoof2021_df"]):
        monkeypatch.setattr("sasv.corpora.registry.CORPORA", dict.fromkeys(names))
        listed = {1: "la", 2: "la or asvspoof5", 3: "la, asvspoof5 or asvspoof2021_df"}[len(names)]
        with pytest.raises(CorpusError, match=rf"^--corpus must be {listed}, got 'vox'$"):
            get_corpus("vox")


def test_the_answers_of_sasv_corpus(capsys) -> None:
    assert ask(capsys, "names") == " | ".join(CORPORA)
    assert ask(capsys, "prepare_tool", "--corpus", "asvspoof5") == "prepare_asvspoof5"
    assert ask(capsys, "download", "--corpus", "la") == "local/download_la.sh"
    assert ask(capsys, "download", "--corpus", "asvspoof5") == ""
    # the folder stages 0 and 1 read: --root, else LA's --la_root
    assert ask(capsys, "check", "--corpus", "la", "--la_root", "LA") == "LA"
    assert ask(capsys, "check", "--corpus", "la", "--root", "X", "--la_root", "LA") == "X"
    assert ask(capsys, "check", "--corpus", "la", "--set_options", "trials_dir") == ""
    assert ask(capsys, "check", "--corpus", "asvspoof5", "--stage1", "false", "--la_root", "LA") == ""
    # the sets stage 1 writes; a countermeasure benchmark: no stage 2, stage 4's tool
    assert ask(capsys, "sets", "--corpus", "la") == "dev eval"
    assert ask(capsys, "sets", "--corpus", "asvspoof2021_la") == "la2021_eval"
    assert ask(capsys, "cm_only", "--corpus", "asvspoof5") == "false"
    assert ask(capsys, "cm_only", "--corpus", "asvspoof2021_df") == "true"
    assert ask(capsys, "cm_evaluation", "--corpus", "la") == ""
    assert ask(capsys, "cm_evaluation", "--corpus", "asvspoof2021_df") == "evaluate_asvspoof2021"


def test_sasv_corpus_stays_light() -> None:
    """The scripts ask it before every run: no torch, numpy or audio library."""
    code = (
        "import sys; from sasv.__main__ import main; main(['corpus', 'check', '--corpus', 'la']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy', 'soundfile', 'yaml'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.splitlines()[-1] == "[]", out.stderr


# a corpus that is not there: its record is all it has (it borrows ASVspoof 5's tool and mini corpus)
FAKE = Corpus(
    name="asvspoof2019_pa", title="ASVspoof 2019 PA", folder="the PA folder",
    prepare_tool="prepare_asvspoof5", mini_corpus="sasv.corpora.asvspoof5_mini:write_asvspoof5_corpus",
    a_dcf_models=("paper",),
)  # fmt: skip


def test_a_new_corpus_is_one_record(monkeypatch, capsys) -> None:
    monkeypatch.setitem(CORPORA, FAKE.name, FAKE)
    assert ask(capsys, "names").endswith(" | asvspoof2019_pa")
    assert ask(capsys, "prepare_tool", "--corpus", FAKE.name) == "prepare_asvspoof5"
    assert ask(capsys, "title", "--corpus", FAKE.name) == "ASVspoof 2019 PA"
    assert ask(capsys, "check", "--corpus", FAKE.name, "--root", "PA") == "PA"
    with pytest.raises(CorpusError, match="or asvspoof2019_pa, got 'vox'"):
        get_corpus("vox")
    assert sasv_main(["corpus", "check", "--corpus", FAKE.name]) == 1
    assert "--corpus asvspoof2019_pa needs --root (the PA folder) for stage 1" in capsys.readouterr().err


def test_the_stage_scripts_run_a_new_corpus_from_its_record_alone(tmp_path) -> None:
    """Both scripts, stages 0 and 1, on a corpus registered in the process only (a ``sitecustomize`` adds the
    record; the scripts and tools are as they are)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "from sasv.corpora.registry import CORPORA, Corpus\n"
        f"CORPORA[{FAKE.name!r}] = Corpus(**{FAKE.__dict__!r})\n"
    )
    CORPORA["asvspoof5"].mini_corpus_writer()(plan_corpus(TINY), tmp_path / "corpus")
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        SASV_VENV=str(Path(sys.executable).parents[1]),
        PYTHONPATH=str(hook),
    )
    root, exp = str(tmp_path / "corpus" / "ASVspoof5"), str(tmp_path / "exp")
    common = ["--corpus", FAKE.name, "--root", root, "--exp_dir", exp]
    for script, extra in (
        ("run_spk_ebd_extract.sh", ["--data_dir", str(tmp_path / "data"), "--audio_check", "false"]),
        ("run_train_cm.sh", ["--data_dir", str(tmp_path / "cm"), "--audio_check", "false"]),
    ):
        cmd = ["bash", script, "--stage", "0", "--stop_stage", "1", *common, *extra]
        out = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert "Stage 0: skipped (ASVspoof 2019 PA has no download: get it by hand)" in out.stdout
        assert "(sasv prepare_asvspoof5)" in out.stdout
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dev", "eval"]
    assert sorted(p.name for p in (tmp_path / "cm").iterdir()) == ["cm_dev", "cm_eval", "cm_train"]
    out = subprocess.run(
        ["bash", "run_train_cm.sh", "--corpus", FAKE.name, "--stage", "0", "--download", "true", *common[2:]],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 1
    assert "stage 0 cannot download ASVspoof 2019 PA; get it by hand" in out.stderr
