"""Stage 1 for ASVspoof 5: data dirs data/{dev,eval}/{wav.scp,utt2spk,spk2utt,enroll,trials} from a release
folder, the same Kaldi-style data dirs as ``sasv prepare_la`` writes for LA (what follows is corpus-blind),
plus ``utt2codec`` (the codec condition of each test file, from the metadata) for the per-codec tables.

Reads, under --root (the folder holding flac_T/, flac_D/, flac_E_eval/ and the protocol files, beside them or
in ASVspoof5_protocols/; release or challenge-phase names, see sasv/corpora/asvspoof5.py):
  ASVspoof5.<set>.track_2.trial.tsv    Track 2 trials (claimed speaker, file, attack, key)
  ASVspoof5.<set>.track_2.enroll.tsv   enrolment files per speaker
  ASVspoof5.<set>.tsv                  metadata: the true speaker of each file, attacks of phase-era trials
  flac_<T|D|E_eval>/<file>.flac        audio (must all exist)

With --cohort, also data/train_cohort (the bona fide files of ASVspoof5.train.tsv, for AS-norm); with
--cm_sets (train dev eval), data/cm_<set>/{wav.scp,utt2spk,spk2utt,utt2spf} from a set's metadata, what
`sasv train_cm` trains and validates a countermeasure on. --sets '' makes only these.

Prints the trial, speaker and enrolment-file counts of each set and compares them with the release's
(dev 282,456 trials, 398 speakers, 1,184 enrolment files; eval 834,536, 367, 1,098): a difference is a
warning (a partial download, another release), not an error. Every list is validated before anything is
written; every audio file is decoded once (--audio_check true) as for LA.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from sasv.bin.options import add_stage1_options, parse_stage1_args
from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.asvspoof5 import SPLITS, TRACK2_SPLITS, ASVspoof5Layout, Track2Counts, compare_counts
from sasv.corpora.asvspoof5_protocols import Asv5Entry, read_enrollment, read_metadata, read_trials
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
from sasv.corpora.protocols import (
    CmEntry,
    ProtocolError,
    check_enrollment_against_cm,
    check_trials_against_cm,
    format_trial_counts,
)

log = logging.getLogger("prepare_asvspoof5")


def _metadata(layout: ASVspoof5Layout, split: str) -> tuple[list[Asv5Entry], Path] | None:
    try:
        path = layout.protocol("metadata", split)
    except ProtocolError:
        return None
    return read_metadata(path), path


def build(layout: ASVspoof5Layout, split: str) -> tuple[DataDir, list[Path]]:
    """The data dir of one Track 2 split, in memory, checked, and the protocol files it is made from."""
    metadata = _metadata(layout, split)
    attacks = {e.utt: e.attack for e in metadata[0]} if metadata else None
    trials_path, enroll_path = layout.protocol("trials", split), layout.protocol("enrollment", split)
    trials = read_trials(trials_path, attacks)
    enroll = read_enrollment(enroll_path)
    utts = sorted({t.utt for t in trials} | {u for us in enroll.values() for u in us})
    wav_scp = audio_paths(layout, split, utts, f"the {split} protocols")
    sources = [trials_path, enroll_path]
    names = {"trials": str(trials_path), "enroll": str(enroll_path)}
    cm = utt2codec = None
    if metadata is not None:
        entries, path = metadata
        names["cm"] = str(path)
        cm = [CmEntry(e.spk, e.utt, "-" if e.label == "bonafide" else e.attack, e.label) for e in entries]
        covered = {e.utt for e in entries}
        if all(t.utt in covered for t in trials):
            sources.append(path)
            codec_of = {e.utt: e.codec for e in entries}
            utt2codec = {t.utt: codec_of[t.utt] for t in trials}
        else:
            # the files it lists must still agree with the trials and enrolments: a partial metadata file is
            # no excuse for a contradiction
            log.warning("%s does not list every trial file: test speakers taken from the trial list", path)
            check_trials_against_cm(trials, cm, str(path))
            check_enrollment_against_cm(enroll, cm, str(path))
            cm = None
    utt2spk = utterance_speakers(trials, enroll, cm, names, unit="file")
    data = DataDir(wav_scp=wav_scp, utt2spk=utt2spk, enroll=enroll, trials=trials, utt2codec=utt2codec)
    problems = data.problems()
    if problems:
        raise DataDirError(f"{split}: {'; '.join(problems)}")
    return data, sources


def build_cm(layout: ASVspoof5Layout, split: str) -> tuple[CmLists, Path]:
    """wav.scp, utt2spk and utt2spf of one split's metadata (every file, bona fide and spoofed)."""
    path = layout.protocol("metadata", split)  # an error naming the files it looked for, when none is there
    entries = read_metadata(path)
    wav_scp = audio_paths(layout, split, [e.utt for e in entries], str(path))
    return (wav_scp, {e.utt: e.spk for e in entries}, {e.utt: e.label for e in entries}), path


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv prepare_asvspoof5", description=__doc__)
    p.add_argument("--root", required=True, help="the ASVspoof 5 folder (holds flac_D/, flac_E_eval/, ...)")
    add_stage1_options(p, TRACK2_SPLITS, "ASVspoof 5")
    args = parse_stage1_args(p, argv, TRACK2_SPLITS, SPLITS)
    root = Path(args.root)
    if not root.is_dir():
        raise DataDirError(f"{root}: ASVspoof 5 folder does not exist")
    layout = ASVspoof5Layout(root)
    built, suspects = {}, {}
    for split in args.sets:  # everything is checked before the first file is written
        log.info("%s: reading protocols from %s", split, root)
        built[split] = build(layout, split)
        if args.audio_check:
            suspects[split] = check_audio(split, built[split][0].wav_scp, args.suspect_audio)
    cohort = None
    if args.cohort:
        (wav_scp, utt2spk, utt2spf), cohort_source = build_cm(layout, "train")
        bonafide = sorted(u for u, label in utt2spf.items() if label == "bonafide")
        cohort = {u: wav_scp[u] for u in bonafide}, {u: utt2spk[u] for u in bonafide}, cohort_source
    cm_dirs = {split: build_cm(layout, split) for split in args.cm_sets}
    for split, (data, sources) in built.items():
        out = Path(args.out) / split
        write_trial_dir(out, data, sources, suspects.get(split, {}), "asvspoof5")
        n_files = sum(len(files) for files in data.enroll.values())
        print(
            f"{split}: trials {format_trial_counts(data.trial_counts())}; {len(data.enroll)} enrolled "
            f"speakers ({n_files} enrolment files), {len(data.wav_scp)} utterances -> {out}"
        )
        differences = compare_counts(split, Track2Counts(len(data.trials), len(data.enroll), n_files))
        if differences:
            log.warning("%s: not the release's %s set: %s", split, split, "; ".join(differences))
        else:
            print(f"{split}: the release's counts (trials, speakers, enrolment files)")
        if suspects.get(split):
            print(f"{split}: {len(suspects[split])} suspicious audio file(s) listed in {out / AUDIO_REPORT}")
    if cohort is not None:
        write_cohort_dir(Path(args.out) / COHORT, *cohort)
    for split, (lists, source) in cm_dirs.items():
        write_cm_dir(Path(args.out) / f"{CM_PREFIX}{split}", lists, source)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
