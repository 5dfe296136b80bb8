"""Stage 1: Kaldi-style data dirs data/{dev,eval}/{wav.scp,utt2spk,spk2utt,enroll,trials} from an LA tree.

Reads, under --root (or --la_root, the same option: the LA/ folder of LA.zip):
  ASVspoof2019_LA_asv_protocols/ASVspoof2019.LA.asv.<set>.{female,male}.trn.txt   enrolment lists (merged)
  <trials_dir>/ASVspoof2019.LA.asv.<set>.gi.trl.txt                              SASV trial lists
  ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.<set>.trl.txt                   true speaker of each test
                                                                                  utterance (optional)

Where two of these lists say the same thing they must agree (sasv.corpora.data_prep.utterance_speakers): a
trial's key and attack against the CM protocol's label and attack, a target or spoof trial's claimed speaker
against its utterance's true speaker, a nontarget trial's against it too (it must differ), enrolment
utterances against the CM protocol; each contradiction is one error naming its kind and first offenders.
  ASVspoof2019_LA_<set>/flac/<utt>.flac                                           audio (must all exist)

With --cohort, also data/train_cohort/{wav.scp,utt2spk,spk2utt}: the bona fide utterances of the LA train
set (CM protocol ASVspoof2019.LA.cm.train.trn.txt), the score-normalisation (AS-norm) cohort and the
speakers an ASV model can be trained on.

With --cm_sets (train dev eval), also data/cm_<set>/{wav.scp,utt2spk,spk2utt,utt2spf}: every utterance of
the set's CM protocol (ASVspoof2019.LA.cm.<set>.{trn,trl}.txt) labelled bonafide|spoof in utt2spf, what
`sasv train_cm` trains and validates a countermeasure on. --sets '' makes only these.

Every audio file is decoded once (--audio_check true, the default): a file the models cannot take is an
error now rather than hours into stage 2, and silent, near-silent or heavily clipped files are listed in
<out>/<set>/audio_report.txt and the log (--suspect_audio error stops on them instead).

Every list is validated before anything is written, so a failed run leaves earlier outputs as they were;
a re-run with the same inputs rewrites identical files. Prints the trial counts per key; the official
lists give dev target=1484 nontarget=5768 spoof=22296 and eval target=5370 nontarget=33327 spoof=63882.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sasv.bin.options import add_stage1_options, parse_stage1_args
from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.data_prep import (
    AUDIO_REPORT,
    CM_PREFIX,
    COHORT,
    CmLists,
    audio_paths,
    check_audio,
    utterance_speakers,
    write_cm_dir,
    write_cohort_dir,
    write_trial_dir,
)
from sasv.corpora.datadir import (
    DataDir,
    DataDirError,
)
from sasv.corpora.la import SPLITS, TRIAL_SPLITS, LALayout
from sasv.corpora.protocols import (
    format_trial_counts,
    read_cm_protocol,
    read_enrollments,
    read_sasv_trials,
)

log = logging.getLogger("prepare_la")


def build(layout: LALayout, split: str) -> DataDir:
    """The data dir of one split, in memory, checked against itself and against the audio on disk."""
    trials = read_sasv_trials(layout.trial_list(split))
    enroll = read_enrollments(layout.enrollment_lists(split))
    # audio first: a trial or enrolment utterance without a file is named as what it is, a missing file
    utts = sorted({t.utt for t in trials} | {u for us in enroll.values() for u in us})
    wav_scp = audio_paths(layout, split, utts, f"the {split} protocols")
    cm_path = layout.cm_protocol(split)
    sources = {
        "trials": str(layout.trial_list(split)),
        "enroll": " and ".join(map(str, layout.enrollment_lists(split))),
        "cm": str(cm_path),
    }
    cm = read_cm_protocol(cm_path) if cm_path.is_file() else None
    utt2spk = utterance_speakers(trials, enroll, cm, sources)
    if cm is None:
        unknown = sum(1 for u, s in utt2spk.items() if u == s)
        log.warning(
            "%s not found: test speakers taken from the trial list; %d utterances seen only in nontarget "
            "trials are their own speaker in utt2spk",
            cm_path,
            unknown,
        )

    data = DataDir(
        wav_scp=wav_scp,
        utt2spk=utt2spk,
        enroll=enroll,
        trials=trials,
    )
    problems = data.problems()
    if problems:
        raise DataDirError(f"{split}: {'; '.join(problems)}")
    return data


def build_cohort(layout: LALayout) -> tuple[dict[str, str], dict[str, str]]:
    """wav.scp and utt2spk of the LA train set's bona fide utterances (speakers disjoint from dev/eval)."""
    entries = [e for e in read_cm_protocol(layout.cm_protocol("train")) if e.label == "bonafide"]
    if not entries:
        raise DataDirError(f"{layout.cm_protocol('train')}: no bona fide utterances for the cohort")
    utt2spk = {e.utt: e.spk for e in entries}
    return audio_paths(layout, "train", utt2spk, "the AS-norm cohort"), utt2spk


def build_cm(layout: LALayout, split: str) -> CmLists:
    """wav.scp, utt2spk and utt2spf of one split's CM protocol (every utterance, bona fide and spoofed)."""
    entries = read_cm_protocol(layout.cm_protocol(split))
    if not entries:
        raise DataDirError(f"{layout.cm_protocol(split)}: no utterances")
    wav_scp = audio_paths(layout, split, [e.utt for e in entries], str(layout.cm_protocol(split)))
    return wav_scp, {e.utt: e.spk for e in entries}, {e.utt: e.label for e in entries}


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv prepare_la", description=__doc__)
    p.add_argument(
        "--root",
        "--la_root",
        dest="la_root",
        required=True,
        help="the LA/ folder (holds ASVspoof2019_LA_{dev,eval}/ ...); --la_root is the same option",
    )
    p.add_argument(
        "--trials_dir",
        default=None,
        help="folder of the SASV trial lists (<la_root>/ASVspoof2019_LA_asv_protocols)",
    )
    add_stage1_options(p, TRIAL_SPLITS, "LA")
    args = parse_stage1_args(p, argv, TRIAL_SPLITS, SPLITS)

    la_root = Path(args.la_root)
    if not la_root.is_dir():
        raise DataDirError(f"{la_root}: LA folder does not exist (download it with local/download_la.sh)")
    layout = LALayout(la_root, Path(args.trials_dir) if args.trials_dir else None)
    built, suspects = {}, {}
    for split in args.sets:  # everything is checked before the first file is written
        log.info("%s: reading protocols from %s", split, la_root)
        built[split] = build(layout, split)
        if args.audio_check:
            suspects[split] = check_audio(split, built[split].wav_scp, args.suspect_audio)
    cohort = build_cohort(layout) if args.cohort else None
    cm_dirs = {split: build_cm(layout, split) for split in args.cm_sets}
    for split, data in built.items():
        out = Path(args.out) / split
        write_trial_dir(out, data, layout.sources(split), suspects.get(split, {}), "la")
        counts = format_trial_counts(data.trial_counts())
        sizes = f"{len(data.enroll)} enrolled speakers, {len(data.wav_scp)} utterances"
        print(f"{split}: trials {counts}; {sizes} -> {out}")
        if suspects.get(split):
            print(f"{split}: {len(suspects[split])} suspicious audio file(s) listed in {out / AUDIO_REPORT}")
    if cohort is not None:
        write_cohort_dir(Path(args.out) / COHORT, *cohort, layout.cm_protocol("train"))
    for split, lists in cm_dirs.items():
        write_cm_dir(Path(args.out) / f"{CM_PREFIX}{split}", lists, layout.cm_protocol(split))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
