"""report.html: the summary tables and plots (ROC, coverage-precision, reliability diagram, score
histograms) and the worst queries with what was retrieved, in one self-contained file (plots
inlined as PNG)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here or in CI
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plots(summary: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, str]:
    esc = summary["escalation"]
    out = {}
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(esc["roc"]["fpr"], esc["roc"]["tpr"], label=f"AUC {esc['roc']['auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title="Confidence vs correct (cites a relevant doc)")
    ax.legend(loc="lower right")
    out["roc"] = _png(fig)

    curve = esc["coverage_precision"]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([r["coverage"] for r in curve], [r["precision"] for r in curve], marker=".", ms=3)
    ax.axhline(esc["target_precision"], ls="--", c="grey", lw=0.8)
    if esc["threshold"]:
        t = esc["threshold"]
        ax.plot([t["coverage"]], [t["precision"]], "o", c="red", label=f"threshold {t['threshold']:.3f}")
        ax.legend(loc="lower left")
    ax.set(xlabel="coverage (share answered)", ylabel="precision (answered and correct)",
           title="Answer / escalate trade-off")
    out["coverage"] = _png(fig)

    bins = esc.get("reliability") or []
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfectly calibrated")
    if bins:
        ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=[b["high"] - b["low"] for b in bins],
               align="edge", alpha=0.6, edgecolor="black", label="share correct")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", c="red", ms=4,
                label="mean confidence")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (stated probability of a right answer)",
           ylabel="share actually right", title=f"Reliability (ECE {esc.get('ece', float('nan')):.3f})")
    ax.legend(loc="upper left", fontsize=8)
    out["reliability"] = _png(fig)

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    right = [r["confidence"] for r in rows if r["cites_relevant"]]
    wrong = [r["confidence"] for r in rows if not r["cites_relevant"]]
    axes[0].hist([right, wrong], bins=20, range=(0, 1), label=["correct", "not correct"], stacked=True)
    axes[0].set(xlabel="confidence", ylabel="questions", title="Confidence")
    axes[0].legend()
    axes[1].hist([r["ndcg@10"] for r in rows], bins=20, range=(0, 1))
    axes[1].set(xlabel="nDCG@10", ylabel="questions", title="Retrieval per question")
    out["hist"] = _png(fig)
    return out


def write_report(out_dir: Path, titles: dict[str, str] | None = None, worst: int = 25) -> Path:
    summary = json.loads((out_dir / "summary.json").read_text())
    rows = [json.loads(line) for line in (out_dir / "per_query.jsonl").read_text().splitlines() if line.strip()]
    titles = titles or {}
    imgs = plots(summary, rows)
    esc = summary["escalation"]
    e = html.escape
    metric_rows = "".join(f"<tr><td>{e(k)}</td><td>{v:.4f}</td></tr>" for k, v in summary["metrics"].items())
    lat = summary["latency_ms"]
    chosen = esc["threshold"]
    threshold = (f"{chosen['threshold']:.3f} (coverage {chosen['coverage']:.1%}, precision {chosen['precision']:.1%})"
                 if chosen else f"none reaches {esc['target_precision']:.0%}")
    failures = sorted(rows, key=lambda r: (r["ndcg@10"], r["confidence"]))[:worst]
    fail_rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{:.3f}</td><td>{}</td><td><ol>{}</ol></td></tr>".format(
            e(r["id"]), e(r["question"][:200]), r["ndcg@10"], e(", ".join(r["relevant"])),
            "".join(f"<li>{e(d)} {e(titles.get(d, '')[:90])}</li>" for d in r["retrieved"][:5]))
        for r in failures)
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>answerdesk eval — {e(summary['dataset'])}</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:2rem;max-width:75rem}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}}img{{margin:.5rem}}ol{{margin:0}}</style></head>
<body><h1>answerdesk eval: {e(summary['dataset'])}</h1>
<p>{summary['queries']} questions over {summary['documents']} documents; model {e(summary['model'])};
revision {e(summary['git_revision'])}; {e(summary['created'])}.</p>
<h2>Figures</h2><table><tr><th>metric</th><th>value</th></tr>{metric_rows}
<tr><td>latency p50 / p95</td><td>{lat['p50']:.0f} ms / {lat['p95']:.0f} ms</td></tr>
<tr><td>threshold for {esc['target_precision']:.0%} precision</td><td>{e(threshold)}</td></tr>
<tr><td>escalation AUC / expected calibration error</td>
<td>{esc['roc']['auc']:.3f} / {esc.get('ece', float('nan')):.3f}</td></tr>
</table>
<h2>Escalation</h2><img alt="ROC curve" src="data:image/png;base64,{imgs['roc']}">
<img alt="coverage-precision curve" src="data:image/png;base64,{imgs['coverage']}">
<img alt="reliability diagram" src="data:image/png;base64,{imgs['reliability']}">
<h2>Distributions</h2><img alt="histograms" src="data:image/png;base64,{imgs['hist']}">
<h2>Worst {len(failures)} questions</h2>
<table><tr><th>id</th><th>question</th><th>nDCG@10</th><th>relevant</th><th>retrieved (top 5)</th></tr>
{fail_rows}</table>
<h2>Settings</h2><pre>{e(json.dumps(summary['settings'], indent=2))}</pre></body></html>"""
    path = out_dir / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path
