"""Stage 1 for the ASVspoof 2021 LA and DF evaluation sets: a CM data dir per set, what stage 3 scores and
`sasv evaluate_asvspoof2021` evaluates (these benchmarks judge a countermeasure: no enrolment, no SASV
trials).

Reads, under --root (the folder holding the eval audio and the unpacked keys, as the organisers' evaluation
package lays them out; see sasv/corpora/asvspoof2021.py):
  ASVspoof2021_LA_eval/flac/*.flac, ASVspoof2021_DF_eval/flac/*.flac   audio (must all exist)
  keys/LA/CM/trial_metadata.txt, keys/DF/CM/trial_metadata.txt         the CM keys: key, conditions, subset
  keys/LA/ASV/trial_metadata.txt, keys/LA/ASV/ASVTorch_Kaldi/score.txt the ASV key and the organisers' ASV
                                                                       scores (LA's min t-DCF)

and writes <out>/la2021_eval and <out>/df2021_eval (--sets; default: the sets whose CM key is there):
  wav.scp, utt2spk, spk2utt, utt2spf (bonafide|spoof), utt2codec (LA codec, DF compression), utt2attack,
  utt2subset (eval | progress | hidden), LA utt2transmission and asv_scores (the ASV trials and scores), DF
  utt2vocoder; prepared.json naming the benchmark (asvspoof2021_la, asvspoof2021_df).

Every list is validated before anything is written; every audio file is decoded once (--audio_check true)
as for the other corpora. The key's size is compared with the release's (LA 181,566 trials, DF 611,829): a
difference is a warning, not an error. There is no train or dev set (--cohort and --cm_sets are refused):
train on ASVspoof 2019 LA (run_train_cm.sh) and give a trained model's conf to run_spk_ebd_extract.sh.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sasv.bin.options import add_audio_options
from sasv.cli import ArgumentParser, run_cli
from sasv.corpora.asvspoof2021 import (
    ASV_SCORES,
    RELEASE_TRIALS,
    SET_TRACKS,
    ASVspoof2021Layout,
    AsvTrial,
    conditions_of,
    read_asv_trials,
    read_cm_key,
    track_info,
    write_asv_scores,
)
from sasv.corpora.data_prep import AUDIO_REPORT, audio_paths, check_audio, write_audio_report
from sasv.corpora.datadir import (
    CmDataDir,
    DataDirError,
    spk2utt_from_utt2spk,
    validate_cm_datadir,
    write_spk2utt,
    write_utt2spf,
    write_utt2spk,
    write_utt2value,
    write_wav_scp,
)
from sasv.markers import write_prepared_marker

log = logging.getLogger("prepare_asvspoof2021")
SETS = tuple(SET_TRACKS)


def build(layout: ASVspoof2021Layout, track: str) -> tuple[CmDataDir, list[AsvTrial] | None, list[Path]]:
    """One track's data dir in memory, checked, its ASV trials (LA) and the key files it is made from."""
    key = layout.cm_key(track)
    trials = read_cm_key(key, track)
    wav_scp = audio_paths(layout, track, [t.utt for t in trials], str(key))
    data = CmDataDir(
        wav_scp=wav_scp,
        utt2spk={t.utt: t.spk for t in trials},
        utt2spf={t.utt: t.label for t in trials},
        conditions=conditions_of(trials, track),
    )
    sources = [key]
    asv = None
    if track_info(track).tandem:
        asv_key, asv_scores = layout.asv_key(), layout.asv_scores()
        asv = read_asv_trials(asv_key, asv_scores)
        sources += [asv_key, asv_scores]
    return data, asv, sources


def write(out: Path, data: CmDataDir, asv: list[AsvTrial] | None, sources: list[Path], benchmark: str,
          suspects: dict[str, str]) -> None:  # fmt: skip
    write_wav_scp(out / "wav.scp", data.wav_scp)
    write_utt2spk(out / "utt2spk", data.utt2spk)
    write_spk2utt(out / "spk2utt", spk2utt_from_utt2spk(data.utt2spk))
    write_utt2spf(out / "utt2spf", data.utt2spf)
    for name, values in data.conditions.items():
        write_utt2value(out / name, values)
    if asv is not None:
        write_asv_scores(out / ASV_SCORES, asv)
    validate_cm_datadir(out, tuple(data.conditions))
    write_audio_report(out, data.wav_scp, suspects)
    write_prepared_marker(out, sources, benchmark)


def counts(data: CmDataDir, asv: list[AsvTrial] | None) -> str:
    labels = Counter(data.utt2spf.values())
    subsets = Counter(data.conditions["utt2subset"].values())
    text = (
        f"{len(data.wav_scp):,} trials ({labels['bonafide']:,} bona fide, {labels['spoof']:,} spoofed; "
        + ", ".join(f"{s} {n:,}" for s, n in sorted(subsets.items()))
        + ")"
    )
    if asv is not None:
        keys = Counter(t.key for t in asv)
        text += (
            f"; ASV trials: {keys['target']:,} target, {keys['nontarget']:,} nontarget, "
            f"{keys['spoof']:,} spoof"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    p = ArgumentParser(prog="sasv prepare_asvspoof2021", description=__doc__)
    p.add_argument(
        "--root", required=True, help="the folder holding ASVspoof2021_{LA,DF}_eval/ and keys/{LA,DF}/"
    )
    p.add_argument("--out", default="data", help="root of the data dirs (default: data)")
    p.add_argument(
        "--sets", nargs="*", default=None, help=f"{' '.join(SETS)} (default: those whose CM key is there)"
    )
    p.add_argument("--cm_sets", nargs="*", default=[], help="refused: ASVspoof 2021 has no train or dev set")
    p.add_bool(
        "--cohort", False, "refused when true: ASVspoof 2021 has no training set for an AS-norm cohort"
    )
    add_audio_options(p)
    args = p.parse_args(argv)
    if args.cm_sets or args.cohort:
        option = "--cm_sets" if args.cm_sets else "--cohort true"
        p.error(
            f"{option}: ASVspoof 2021 has no train or dev set (train on ASVspoof 2019 LA); its eval sets "
            f"are CM data dirs already (--sets {' '.join(SETS)})"
        )
    sets = None if args.sets is None else [s for s in args.sets if s]  # --sets '' from a shell variable
    bad = [s for s in sets or () if s not in SETS]
    if bad:
        p.error(f"--sets: {bad[0]!r} is not one of {', '.join(SETS)}")
    root = Path(args.root)
    if not root.is_dir():
        raise DataDirError(f"{root}: ASVspoof 2021 folder does not exist")
    layout = ASVspoof2021Layout(root)
    if not sets:  # every set whose CM key is there
        sets = [s for s in SETS if layout.cm_key(SET_TRACKS[s]).is_file()]
        if not sets:
            tried = ", ".join(str(layout.cm_key(t)) for t in SET_TRACKS.values())
            raise DataDirError(f"{root}: no ASVspoof 2021 CM key ({tried})")
    built, suspects = {}, {}
    for set_name in sets:  # everything is checked before the first file is written
        track = SET_TRACKS[set_name]
        log.info("%s: reading the ASVspoof 2021 %s keys from %s", set_name, track, root)
        built[set_name] = build(layout, track)
        if args.audio_check:
            suspects[set_name] = check_audio(set_name, built[set_name][0].wav_scp, args.suspect_audio)
    for set_name, (data, asv, sources) in built.items():
        track = track_info(SET_TRACKS[set_name])
        out = Path(args.out) / set_name
        write(out, data, asv, sources, track.benchmark, suspects.get(set_name, {}))
        print(f"{set_name}: {counts(data, asv)} -> {out}")
        if len(data.wav_scp) != RELEASE_TRIALS[track.name]:
            log.warning(
                "%s: %s trials, not the release's %s (a partial download, another release?)",
                set_name, f"{len(data.wav_scp):,}", f"{RELEASE_TRIALS[track.name]:,}",
            )  # fmt: skip
        if suspects.get(set_name):
            report = out / AUDIO_REPORT
            print(f"{set_name}: {len(suspects[set_name])} suspicious audio file(s) listed in {report}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
