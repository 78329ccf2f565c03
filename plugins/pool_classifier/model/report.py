"""The model report of a training run: Markdown with PNG plots, and the same as one HTML file.

Written into the version folder (`models/<version>/report.md`, `report.html`, `*.png`):
the promotion decision, champion vs challenger on the same rows, every candidate's metrics,
recall per pool, the scores per label kind and the baseline under each label rule, precision–recall
curves, the confusion matrix, the calibration (reliability curve, Brier scores) and the decision
threshold with its precision and recall, the top permutation
importances, the data and its time split, the address profiles, settings and libraries.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np

PR_CURVE = "pr_curve.png"
CONFUSION = "confusion_matrix.png"
IMPORTANCES = "importances.png"
SILHOUETTE = "profiles_silhouette.png"
RELIABILITY = "reliability.png"
TOP_IMPORTANCES = 12


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    # No timestamp or version in the PNG, so the same run writes the same bytes.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    _pyplot().close(fig)


def plot_pr_curves(path: Path, curves: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> None:
    """One precision–recall curve per (label, y_true, scores)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, y, scores in curves:
        if len(y) == 0 or y.sum() == 0:
            continue
        p, r, _ = precision_recall_curve(y, scores)
        ax.step(r, p, where="post", label=f"{label} (AP {average_precision_score(y, scores):.3f})")
    ax.axhline(0.95, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02))
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def plot_reliability(path: Path, calibration: dict, title: str) -> None:
    """Observed frequency against mean predicted probability per bin, raw and calibrated."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    for key, label, marker in (("reliability_raw", f"raw score (Brier {calibration['brier_raw']:.4f})", "s"),
                               ("reliability", f"{calibration['method']}-calibrated "
                                               f"(Brier {calibration['brier_calibrated']:.4f})", "o")):
        bins = calibration[key]
        ax.plot([b["predicted"] for b in bins], [b["observed"] for b in bins], marker=marker, label=label)
        if key == "reliability":
            for b in bins:
                ax.annotate(f"{b['rows']:,}", (b["predicted"], b["observed"]), fontsize=7,
                            textcoords="offset points", xytext=(4, -10))
    ax.axvline(calibration["decision"]["threshold"], color="#c2410c", linestyle="--", linewidth=1,
               label=f"threshold {calibration['decision']['threshold']:.3f}")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency (weighted)", xlim=(0, 1), ylim=(0, 1.02))
    ax.set_title(title + " (rows per bin)", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def calibration_section(metadata: dict) -> list[str]:
    """The calibration map, its Brier scores and reliability, and the threshold with its figures."""
    c = metadata.get("calibration")
    if not c:
        return ["## Calibration", "", f"None: a version saved before calibration (threshold {metadata['threshold']} "
                "on predict_proba).", ""]
    d, split = c["decision"], metadata["split"]
    fitted = c["fitted_on"]
    reached = (f"reached: the lowest threshold with precision ≥ {d['target_precision']}" if d["target_reached"] else
               f"**not reachable** on these rows: the threshold of the best precision reached, "
               f"{d['precision']:.3f}")
    lines = [
        "## Calibration and the decision threshold",
        "",
        f"The score is the model's raw output (`{c['input']}`) mapped by a **{c['method']}** calibration "
        f"(scikit-learn `CalibratedClassifierCV` around the frozen model) fitted on {fitted['rows']:,} rows "
        f"({fitted['positives']} pools) first seen from {split.get('calibration_from_utc', '?')} to the evaluation "
        "cut-off, which the model was not fitted on. The feature contributions explain the raw output, "
        "before the map.",
        (f"Negatives weigh {c['negative_weight']:.2f} (the training set's sample of the others scaled to the "
         f"{c['population']}), in the map's fit and in every figure below." if c["population"] != "training set" else
         "Negatives weigh 1: the address state's size was unknown, so the probability is that of the training "
         "set's mix (its others a sample), which overstates a pool's."),
        "",
        f"**Threshold {d['threshold']:.4f}** on the calibrated probability, chosen on the {split['eval_rows']:,} "
        f"evaluation rows for target precision {d['target_precision']} ({reached}): precision "
        f"**{d['precision']:.3f}**, recall **{d['recall']:.3f}** ({d['true_positives']} of "
        f"{split['eval_positives']} pools; {d['predicted_positives']} rows flagged).",
        "",
        f"Brier score on the evaluation rows: {c['brier_raw']:.5f} raw → {c['brier_calibrated']:.5f} calibrated. "
        "(The confusion matrix and the recall per pool above count the evaluation rows as they are, unweighted; "
        "the precision here weighs the negatives.)",
        "",
        f"![reliability curve]({RELIABILITY})",
        "",
        "| predicted bin | rows | pools | mean predicted | observed |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {b['bin'][0]:.1f}–{b['bin'][1]:.1f} | {b['rows']:,} | {b['positives']} | {b['predicted']:.4f} "
              f"| {b['observed']:.4f} |" for b in c["reliability"]]
    return lines + [""]


def plot_confusion(path: Path, confusion: dict, title: str) -> None:
    plt = _pyplot()
    matrix = np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:,}", ha="center", va="center", fontsize=11)
    ax.set_xticks([0, 1], ["predicted other", "predicted pool"])
    ax.set_yticks([0, 1], ["other", "pool"])
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_importances(path: Path, importances: list[dict], title: str) -> None:
    plt = _pyplot()
    top = importances[:TOP_IMPORTANCES][::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(top) + 1.2))
    ax.barh([r["feature"] for r in top], [r["mean"] for r in top], xerr=[r["std"] for r in top], color="#4c72b0")
    ax.set_xlabel("drop in average precision when shuffled")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_silhouette(path: Path, silhouette: dict, k: int) -> None:
    plt = _pyplot()
    ks = sorted(int(x) for x in silhouette)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.plot(ks, [silhouette[str(x)] for x in ks], marker="o")
    ax.axvline(k, color="grey", linestyle=":")
    ax.set(xlabel="k (profiles)", ylabel="silhouette", title=f"k-means: k = {k} chosen")
    fig.tight_layout()
    _save(fig, path)


def _f(value, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _metric_row(name: str, version: str, m: dict) -> str:
    return (
        f"| {name} | `{version}` | {m['rows']:,} | {m['positives']} | {_f(m['pr_auc'])} | {_f(m['precision'], 3)} "
        f"| {_f(m['recall'], 3)} | {_f(m['recall_at_95_precision'], 3)} |"
    )


def render_markdown(metadata: dict) -> str:
    version, ds = metadata["version"], metadata["trained_for"]
    promotion, split, data = metadata["promotion"], metadata["split"], metadata["data"]
    metrics = metadata["metrics"]
    threshold = f"{float(metadata['threshold']):.4f}"
    lines = [
        f"# Model report: `{version}`",
        "",
        f"Training run of **{ds}** (data {data['window']['first_day']} … {data['window']['last_day']}), "
        f"commit `{metadata['git_commit'][:12]}`.",
        "",
        f"**{'PROMOTED' if promotion['promoted'] else 'NOT PROMOTED'}**: {promotion['reason']}.",
        f"Champion before: `{promotion['champion_before']}`; champion after: `{promotion['champion_after']}`.",
        "",
        "## Champion vs challenger",
        "",
    ]
    header = [
        "| model | version | rows | positives | PR-AUC | precision | recall | recall @ 95 % precision |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    champion = metadata.get("champion")
    if champion and "metrics" in champion:
        lines += [
            f"On the {champion['rows']:,} evaluation rows that neither model was trained on "
            f"(precision and recall at each model's threshold):",
            "",
            *header,
            _metric_row("challenger", version, champion["challenger_metrics"]),
            _metric_row("champion", champion["version"], champion["metrics"]),
        ]
    elif champion:
        lines.append(f"The champion `{champion['version']}` could not be loaded: {champion['error']}")
    else:
        lines.append("No champion before this day: the challenger is compared with no one.")
    lines += [
        "",
        f"## Candidates on the evaluation set (raw scores, threshold {metadata['config']['threshold']})",
        "",
        *header,
    ]
    lines += [
        _metric_row(f"{name} (challenger)" if name == metadata["candidate"] else name, f"{name}-{ds}", c["metrics"])
        for name, c in metadata["candidates"].items()
    ]
    lines += ["", "| candidate | estimator | features |", "|---|---|---|"]
    lines += [
        f"| {name} | {c['estimator']} | {len(c['features'])}: {', '.join(c['features'])} |"
        for name, c in metadata["candidates"].items()
    ]
    lines += [
        "",
        f"## Recall per pool (`{version}`, threshold {threshold})",
        "",
        "| pool | evaluation positives | recall |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {pool} | {r['positives']} | {r['recall']:.3f} |" for pool, r in metrics.get("per_pool_recall", {}).items()
    ]
    lines += render_label_sections(metadata)
    c = metrics["confusion"]
    lines += [
        "",
        "## Precision–recall curves",
        "",
        f"![precision-recall curves]({PR_CURVE})",
        "",
        f"## Confusion matrix (`{version}`, threshold {threshold}, evaluation set)",
        "",
        f"![confusion matrix]({CONFUSION})",
        "",
        "| | predicted other | predicted pool |",
        "|---|---:|---:|",
        f"| other | {c['tn']:,} | {c['fp']:,} |",
        f"| pool | {c['fn']:,} | {c['tp']:,} |",
        "",
        *calibration_section(metadata),
        f"## Top feature importances (`{version}`: permutation on the evaluation set, drop in average precision)",
        "",
        f"On {metadata['importance_rows']['rows']:,} evaluation rows ({metadata['importance_rows']['positives']} pools"
        + (", the others a seeded sample" if metadata["importance_rows"]["rows"] < split["eval_rows"] else "")
        + f"), {metadata['config']['importance_repeats']} shuffles per feature.",
        "",
        f"![feature importances]({IMPORTANCES})",
        "",
        "| feature | mean drop | std |",
        "|---|---:|---:|",
    ]
    lines += [f"| `{r['feature']}` | {r['mean']:.4f} | {r['std']:.4f} |" for r in metadata["importances"][:TOP_IMPORTANCES]]
    lines += [
        "",
        "## Data",
        "",
        f"- training set: `{data['training_set']}`: {data['rows']:,} rows, {data['positives']} pool addresses, "
        f"{data['negatives_sampled']:,} sampled others",
        "- pool addresses per pool: " + ", ".join(f"{k} {v}" for k, v in data["positives_per_pool"].items()),
        f"- time split on `{split['key']}`: cut-off {split['cutoff_utc']} "
        f"({split['ties_at_cutoff']:,} addresses first seen at that instant, ordered by a seeded hash)",
        f"- train: {split['train_rows']:,} rows, {split['train_positives']} positives; "
        f"evaluate: {split['eval_rows']:,} rows, {split['eval_positives']} positives",
        "",
    ]
    profiles = metadata["profiles"]
    lines += [
        f"## Address profiles (k-means, k = {profiles['k']} by silhouette "
        f"{profiles['silhouette'][str(profiles['k'])]:.3f})",
        "",
        f"![silhouette per k]({SILHOUETTE})",
        "",
        "| profile | description |",
        "|---:|---|",
    ]
    lines += [f"| {p['profile']} | {p['description']} |" for p in profiles["profiles"]]
    lines += [
        "",
        f"Anomaly score: isolation forest; an address is flagged above {profiles['anomaly_threshold']:.4f} "
        "(the training set's top 1 %).",
        "",
        "## Settings and libraries",
        "",
        "```json",
        json.dumps({"params": metadata["params"], "config": metadata["config"], "libraries": metadata["libraries"],
                    "feature_version": metadata["feature_version"]}, indent=2, sort_keys=True),
        "```",
    ]
    return "\n".join(lines) + "\n"


def render_label_sections(metadata: dict) -> list[str]:
    """The target and the scores per label kind; the baseline under each label rule."""
    lines: list[str] = []
    target, kinds, threshold = metadata.get("target"), metadata.get("per_kind"), metadata["threshold"]
    if target and kinds:
        lines += [
            "",
            f"## Label kinds (`{metadata['version']}`, threshold {threshold})",
            "",
            f"Target: {', '.join(f'`{k}`' for k in target['positive_kinds'])}. Training rows per kind: "
            + ", ".join(f"{k} {v:,}" for k, v in target["rows_per_kind"].items())
            + f"; {target['left_out']:,} labelled rows of other kinds left out of training and evaluation.",
            "",
            "| kind | target | rows | scope | predicted pool | share | score p10 | p50 | p90 |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for kind, k in kinds.items():
            q = k["quantiles"]
            lines.append(f"| {kind} | {'yes' if k['target'] else 'no'} | {k['rows']:,} | {k['scope']} "
                         f"| {k['predicted_pool']:,} | {_f(k['share_predicted'], 3)} | {_f(q.get('p10'), 3)} "
                         f"| {_f(q.get('p50'), 3)} | {_f(q.get('p90'), 3)} |")
        lines += ["", "For the target's kinds the share predicted is the recall; for the unlabelled evaluation "
                      "rows, the false-positive rate; for a kind left out, how often the model takes it for the target."]
    rules = metadata.get("label_rules")
    if rules:
        lines += [
            "",
            "## Label rules (the baseline on the same time split)",
            "",
            "| rule | candidate | positives | evaluated on | rows | eval positives | PR-AUC | precision | recall "
            "| recall @ 95 % precision |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]

        def row(rule: dict, on: str, m: dict | None) -> str:
            if m is None:
                return f"| {rule['rule']} | {rule['candidate']} | {rule['positives']} | {on} | – | – | – | – | – | – |"
            return (f"| {rule['rule']} | {rule['candidate']} | {rule['positives']} | {on} | {m['rows']:,} "
                    f"| {m['positives']} | {_f(m['pr_auc'])} | {_f(m['precision'], 3)} | {_f(m['recall'], 3)} "
                    f"| {_f(m['recall_at_95_precision'], 3)} |")

        fixed = rules["fixed"]
        lines.append(row(fixed, "its labels", fixed["metrics"]))
        original = rules.get("original")
        if original:
            lines.append(row(original, "its labels", original["metrics"]))
            lines.append(row(original, "the fixed target", original.get("on_fixed_target")))
            if original.get("note"):
                lines += ["", f"The original rule could not be fitted: {original['note']}."]
    return lines


def render_html(markdown: str, folder: Path) -> str:
    """The Markdown as one self-contained HTML page (the PNGs inlined)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)

    def inline(match):
        file = folder / match.group(1)
        if not file.exists():
            return match.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(file.read_bytes()).decode()}"'

    body = re.sub(r'src="([^"/]+\.png)"', inline, body)
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
        "pre{background:#f6f6f6;padding:.5em;overflow:auto}"
    )
    return f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>model report</title>" \
           f"<style>{style}</style></head><body>\n{body}</body></html>\n"


def write_report(folder: Path, metadata: dict, eval_labels, eval_scores: dict, champion_curves: dict | None) -> Path:
    """Write the plots, report.md and report.html into `folder`; returns report.md."""
    from pool_classifier.model.registry import REPORT_FILE, REPORT_HTML_FILE

    folder = Path(folder)
    ds = metadata["trained_for"]
    curves = [(f"{name}-{ds}", eval_labels, scores) for name, scores in eval_scores.items()]
    title = "evaluation set"
    if champion_curves is not None:
        champion = metadata["champion"]["version"]
        curves = [
            (f"{metadata['version']} (challenger)", champion_curves["labels"], champion_curves["challenger"]),
            (f"{champion} (champion)", champion_curves["labels"], champion_curves["champion"]),
        ] + [c for c in curves if c[0] != metadata["version"]]
        title = "challenger and champion: evaluation rows unseen by both\nother candidates: the whole evaluation set"
    plot_pr_curves(folder / PR_CURVE, curves, title)
    plot_confusion(folder / CONFUSION, metadata["metrics"]["confusion"], f"{metadata['version']}, evaluation set")
    if metadata.get("calibration"):
        plot_reliability(folder / RELIABILITY, metadata["calibration"], f"{metadata['version']}, evaluation set")
    plot_importances(folder / IMPORTANCES, metadata["importances"], f"{metadata['version']}: permutation importance")
    plot_silhouette(folder / SILHOUETTE, metadata["profiles"]["silhouette"], metadata["profiles"]["k"])
    markdown = render_markdown(metadata)
    (folder / REPORT_FILE).write_text(markdown)
    (folder / REPORT_HTML_FILE).write_text(render_html(markdown, folder))
    return folder / REPORT_FILE
