"""The results table of a countermeasure training run, beside the published numbers it should reproduce."""

from __future__ import annotations

from typing import Any

# Eval CM-EER (fraction) on ASVspoof 2019 LA of the released models: Jung et al., "AASIST: Audio
# anti-spoofing using integrated spectro-temporal graph attention networks", ICASSP 2022 (Table 2), and
# the clovaai/aasist README; keyed by the name of the model conf the run trained.
PUBLISHED_EVAL_CM_EER = {"aasist": 0.0083, "aasist_l": 0.0099}
# what users retraining with the official code report (clovaai/aasist GitHub issues): run-to-run spread
RETRAINED_EVAL_CM_EER = (0.015, 0.022)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def results_table(results: dict[str, Any], model_conf_name: str) -> str:
    """Markdown: this run's dev and eval CM-EER, then the reference rows of its architecture (if known),
    then the run's other Track 1 metrics (minDCF, CLLR, actDCF) where results.json has them."""
    lines = [
        f"### Countermeasure {results['name']}: CM-EER (%)",
        "",
        f"Trained on {results['train_set']} for {results['epochs']} epochs; exported: {results['rule']}. "
        "CM-EER: the ASVspoof scorers' EER (nearest DET point), as the published numbers are.",
        "",
        "| model | dev CM-EER (%) | eval CM-EER (%) |",
        "| --- | ---: | ---: |",
        f"| this run: {results['name']} | {_percent(results['dev_cm_eer'])} | "
        f"{_percent(results['eval_cm_eer'])} |",
    ]
    published = PUBLISHED_EVAL_CM_EER.get(model_conf_name)
    if published is not None:
        low, high = RETRAINED_EVAL_CM_EER
        lines += [
            f"| {model_conf_name}, published (Jung et al. 2022, LA eval) | - | {_percent(published)} |",
            f"| {model_conf_name}, retrained by users of the official code | - | "
            f"{_percent(low)}-{_percent(high)} |",
        ]
    lines += ["", f"dev set: {results['dev_set']}; eval set: {results['eval_set'] or '(none)'}", ""]
    by_set = {s: results.get(f"{s}_cm_metrics") for s in ("dev", "eval")}
    if any(by_set.values()):
        lines += [
            "ASVspoof 5 Track 1 metrics of this run's log-odds (logit_bonafide - logit_spoof; CLLR and "
            "actDCF read them as LLRs): Pspoof 0.05, Cmiss 1, Cfa 10.",
            "",
            "| set | minDCF | EER (%) | CLLR (bits) | actDCF |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, m in by_set.items():
            if m:
                lines.append(
                    f"| {name} | {_cost(m['min_dcf'])} | {_percent(m['eer'])} | {_cost(m['cllr'])} | "
                    f"{_cost(m['act_dcf'])} |"
                )
        lines.append("")
    return "\n".join(lines)
