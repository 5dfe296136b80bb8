"""A synthetic mini corpus in exactly the ASVspoof 2019 LA layout, for running the whole recipe in seconds.

The tree, file names, id formats and protocol files are those of LA.zip plus the SASV trial lists, so data
preparation, extraction and scoring run on it unchanged: ``LA/ASVspoof2019_LA_{train,dev,eval}/flac``,
enrolment lists and SASV trial lists in ``LA/ASVspoof2019_LA_asv_protocols``, CM protocols in
``LA/ASVspoof2019_LA_cm_protocols``. Speakers are disjoint across splits; dev and eval have enrolment
utterances, bona fide test utterances and spoofs of each speaker (known attacks A01-A06 in train and dev,
unseen A07-A19 in eval), and a target, nontarget and spoof trial for each. Durations span 0.8 s to over
8 s, so both the short-utterance (wrap / tile) and the multi-segment paths of the embedding and CM cuts
run.

Everything is drawn from one seed: the same arguments give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from sasv.audio import SAMPLE_RATE
from sasv.corpora.la import GENDERS, SPLITS, TRIAL_SPLITS, LALayout
from sasv.corpora.protocols import BONAFIDE, CmEntry, Trial, count_trial_keys, format_trial_counts
from sasv.corpora.synthvoice import SPOOF_STYLES, Voice, draw_voice, synthesize
from sasv.errors import SasvError
from sasv.fileio import atomic_output, atomic_write_text

KNOWN_ATTACKS = tuple(f"A{i:02d}" for i in range(1, 7))  # train and dev
UNSEEN_ATTACKS = tuple(f"A{i:02d}" for i in range(7, 20))  # eval
_LETTER = {"train": "T", "dev": "D", "eval": "E"}
MARKER = ".mini_corpus.json"
PEAK = 0.5
SHORTEST, LONGEST = 0.8, 8.4  # seconds: below one 3 s segment and the CM's 4 s cut; above two CM cuts


class CorpusError(SasvError, ValueError):
    """Bad mini-corpus arguments, or an output folder that is not ours to overwrite."""


@dataclass(frozen=True)
class MiniCorpusConfig:
    """Sizes of the mini corpus. ``speakers``: per dev/eval split, alternately female and male."""

    seed: int = 0
    speakers: int = 4
    train_speakers: int = 2
    enroll_per_spk: int = 3
    bonafide_per_spk: int = 10
    spoof_per_attack: int = 2
    attacks: int = 3
    train_utts_per_spk: int = 4

    def check(self) -> None:
        if self.speakers < 2:
            raise CorpusError("--speakers must be at least 2 (one female and one male enrolment list)")
        if self.train_speakers < 1:
            raise CorpusError("--train-speakers must be at least 1")
        if self.speakers * 2 + self.train_speakers > 999:
            raise CorpusError("at most 999 speakers in all (ids LA_0001 ... LA_0999)")
        if not 1 <= self.attacks <= len(KNOWN_ATTACKS):
            raise CorpusError(f"--attacks must be between 1 and {len(KNOWN_ATTACKS)}")
        for name in ("enroll_per_spk", "bonafide_per_spk", "spoof_per_attack", "train_utts_per_spk"):
            if getattr(self, name) < 1:
                raise CorpusError(f"--{name.replace('_', '-')} must be at least 1")


@dataclass(frozen=True)
class Utterance:
    utt: str
    spk: str
    split: str
    role: str  # "enroll" | "test" | "train"
    attack: str  # "-" for bona fide, else the attack id
    duration: float  # seconds
    seed: int  # synthesis seed

    @property
    def bonafide(self) -> bool:
        return self.attack == "-"


@dataclass
class CorpusPlan:
    """Every speaker, voice and utterance of a mini corpus, before any audio is made."""

    config: MiniCorpusConfig
    voices: dict[str, Voice] = field(default_factory=dict)
    speakers: dict[str, list[str]] = field(default_factory=dict)  # split -> speaker ids
    attacks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    utterances: list[Utterance] = field(default_factory=list)

    def of(self, split: str, role: str | None = None) -> list[Utterance]:
        return [u for u in self.utterances if u.split == split and (role is None or u.role == role)]

    def enrollment(self, split: str, gender: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for u in self.of(split, "enroll"):
            if self.voices[u.spk].gender == gender:
                out.setdefault(u.spk, []).append(u.utt)
        return out

    def cm_entries(self, split: str) -> list[CmEntry]:
        role = "train" if split == "train" else "test"
        return [
            CmEntry(u.spk, u.utt, u.attack, "bonafide" if u.bonafide else "spoof")
            for u in self.of(split, role)
        ]

    def trials(self, split: str) -> list[Trial]:
        """Per enrolled speaker: its bona fide tests (target), everyone else's (nontarget), its spoofs."""
        tests = self.of(split, "test")
        by_key: dict[str, list[Trial]] = {"target": [], "nontarget": [], "spoof": []}
        for spk in self.speakers[split]:
            for u in tests:
                if u.bonafide:
                    key = "target" if u.spk == spk else "nontarget"
                    by_key[key].append(Trial(spk, u.utt, BONAFIDE, key))
                elif u.spk == spk:
                    by_key["spoof"].append(Trial(spk, u.utt, u.attack, "spoof"))
        return [t for trials in by_key.values() for t in trials]


def _unique_numbers(rng: np.random.Generator, n: int, lo: int, hi: int, taken: set[int]) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        x = int(rng.integers(lo, hi))
        if x not in taken:
            taken.add(x)
            out.append(x)
    return out


def plan_corpus(config: MiniCorpusConfig) -> CorpusPlan:
    """Draw speakers, voices, ids, durations and synthesis seeds, all from ``config.seed``."""
    config.check()
    rng = np.random.default_rng(config.seed)
    plan = CorpusPlan(config)
    counts = {"train": config.train_speakers, "dev": config.speakers, "eval": config.speakers}
    spk_numbers = iter(_unique_numbers(rng, sum(counts.values()), 1, 1000, set()))
    taken_utts: set[int] = set()

    def add(split: str, spk: str, role: str, attack: str, n: int, shortest: float, longest: float) -> None:
        prefix = f"LA_{_LETTER[split]}_{'A' if role == 'enroll' else ''}"
        for x in _unique_numbers(rng, n, 1_000_000, 10_000_000, taken_utts):
            duration = round(float(np.exp(rng.uniform(np.log(shortest), np.log(longest)))), 3)
            seed = int(rng.integers(2**63))
            plan.utterances.append(Utterance(f"{prefix}{x}", spk, split, role, attack, duration, seed))

    for split in SPLITS:
        spks = plan.speakers[split] = sorted(f"LA_{next(spk_numbers):04d}" for _ in range(counts[split]))
        for i, spk in enumerate(spks):
            plan.voices[spk] = draw_voice(rng, GENDERS[i % 2])
        attacks = plan.attacks[split] = (UNSEEN_ATTACKS if split == "eval" else KNOWN_ATTACKS)[
            : config.attacks
        ]
        if split == "train":
            for spk in spks:
                add(split, spk, "train", "-", config.train_utts_per_spk, 1.0, 6.5)
                for attack in attacks:
                    add(split, spk, "train", attack, 1, 1.0, 6.5)
            continue
        for spk in spks:
            add(split, spk, "enroll", "-", config.enroll_per_spk, 2.0, 5.0)
        for spk in spks:
            add(split, spk, "test", "-", config.bonafide_per_spk, 1.0, 6.5)
            for attack in attacks:
                add(split, spk, "test", attack, config.spoof_per_attack, 1.0, 6.5)
        # pin the extremes, bona fide and spoofed, so every split runs the shortest and longest code paths
        for bonafide in (True, False):
            idx = [i for i, u in enumerate(plan.utterances) if u.split == split and u.role == "test"]
            idx = [i for i in idx if plan.utterances[i].bonafide == bonafide]
            for i, d in zip(rng.permutation(idx)[:2], (SHORTEST, LONGEST), strict=False):
                plan.utterances[i] = dataclasses.replace(plan.utterances[i], duration=d)
    return plan


def _spoof_style(attack: str) -> str:
    return SPOOF_STYLES[(int(attack[1:]) - 1) % len(SPOOF_STYLES)]


def render(plan: CorpusPlan, u: Utterance) -> np.ndarray:
    """The int16 samples of one utterance: peak <= 0.5 full scale, so values lie on the 16-bit grid."""
    rng = np.random.default_rng(u.seed)
    voice = plan.voices[u.spk]
    style = "bonafide"
    if not u.bonafide:
        style = _spoof_style(u.attack)
        # an imitation: close to the target's voice, never exactly it
        voice = dataclasses.replace(
            voice,
            f0=voice.f0 * rng.uniform(0.95, 1.05),
            formant_scale=voice.formant_scale * rng.uniform(0.97, 1.03),
        )
    wav = synthesize(voice, int(round(u.duration * SAMPLE_RATE)), rng, style)
    gain = rng.uniform(0.5, 1.0) * PEAK * 32768 / np.max(np.abs(wav))
    limit = int(PEAK * 32768)
    return np.clip(np.round(wav * gain), -limit, limit).astype(np.int16)


def _lines(rows: list[str]) -> str:
    return "".join(r + "\n" for r in rows)


def clear_corpus_root(root: Path) -> None:
    """Remove an earlier mini corpus at ``root``; a folder that was not made by a mini-corpus writer is
    never deleted (the marker file tells the two apart)."""
    if root.exists():
        if not (root / MARKER).is_file():
            raise CorpusError(f"{root} exists and is not a mini corpus (no {MARKER}); choose another --out")
        shutil.rmtree(root)


def write_corpus(plan: CorpusPlan, out_dir: str | Path) -> LALayout:
    """Write audio and protocols under ``out_dir/LA``, replacing an earlier mini corpus there."""
    root = Path(out_dir) / "LA"
    clear_corpus_root(root)
    layout = LALayout(root)
    for u in plan.utterances:
        with atomic_output(layout.audio_path(u.split, u.utt)) as tmp:
            sf.write(tmp, render(plan, u), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    for split in SPLITS:
        rows = [f"{e.spk} {e.utt} - {e.attack} {e.label}" for e in plan.cm_entries(split)]
        atomic_write_text(layout.cm_protocol(split), _lines(rows))
    for split in TRIAL_SPLITS:
        for gender in GENDERS:
            rows = [f"{spk} {','.join(utts)}" for spk, utts in plan.enrollment(split, gender).items()]
            atomic_write_text(layout.enrollment_list(split, gender), _lines(rows))
        rows = [f"{t.spk} {t.utt} {t.attack} {t.key}" for t in plan.trials(split)]
        atomic_write_text(layout.trial_list(split), _lines(rows))
    generator = "sasv.corpora.la_mini (synthetic: not ASVspoof data)"
    record = {"generator": generator, **dataclasses.asdict(plan.config)}
    atomic_write_text(root / MARKER, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return layout


def summarize(plan: CorpusPlan) -> str:
    """Counts per split, for the console."""
    durs = [u.duration for u in plan.utterances]
    lines = [
        f"{len(plan.utterances)} utterances, {sum(durs) / 60:.1f} min of audio, "
        f"{min(durs):.2f}-{max(durs):.2f} s (seed {plan.config.seed})"
    ]
    for split in SPLITS:
        utts = plan.of(split)
        spoofs = Counter(u.attack for u in utts if not u.bonafide)
        g = Counter(plan.voices[s].gender for s in plan.speakers[split])
        line = (
            f"  {split:5s}: {len(plan.speakers[split])} speakers ({g['female']} F, {g['male']} M), "
            f"{sum(u.bonafide for u in utts)} bona fide + {sum(spoofs.values())} spoofed utterances "
            f"({', '.join(sorted(spoofs))})"
        )
        if split in TRIAL_SPLITS:
            counts = format_trial_counts(count_trial_keys(plan.trials(split)))
            line += f", {len(plan.of(split, 'enroll'))} of them enrolment; trials {counts}"
        lines.append(line)
    return "\n".join(lines)


def make_mini_corpus(out_dir: str | Path, config: MiniCorpusConfig) -> CorpusPlan:
    plan = plan_corpus(config)
    write_corpus(plan, out_dir)
    return plan
