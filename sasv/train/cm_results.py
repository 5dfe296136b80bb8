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


def results_table(results: dict[str, Any], model_conf_name: str) -> str:
    """Markdown: this run's dev and eval CM-EER, then the reference rows of its architecture (if known)."""
    lines = [
        f"### Countermeasure {results['name']}: CM-EER (%)",
        "",
        f"Trained on {results['train_set']} for {results['epochs']} epochs; exported: {results['rule']}.",
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
    return "\n".join(lines)
