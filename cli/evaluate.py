"""`answerdesk eval ...`: run an evaluation, compare against a baseline, calibrate the threshold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import TaskID
from rich.table import Table

from assistant.settings import load_settings
from cli.common import console, friendly, services
from cli.progress import progress_bar
from eval.beir import iter_corpus
from eval.gate import compare, load_summary, write_setting, write_threshold

if TYPE_CHECKING:
    from eval.runner import EvalConfig

app = typer.Typer(help="Answer-quality evaluation: offline, deterministic, with a regression gate.",
                  no_args_is_help=True)


def _missing(*paths: Path | None) -> None:
    for p in paths:
        if p is not None and not p.exists():
            console.print(f"[red]error:[/red] no such file: {p}")
            raise typer.Exit(2)


@app.command("run")
@friendly
def run(
    corpus: Annotated[Path, typer.Option(help="corpus.jsonl: {id, title, text}")],
    queries: Annotated[Path, typer.Option(help="queries.jsonl: {id, question, body?, answer?}")],
    qrels: Annotated[Path, typer.Option(help="qrels.tsv: query_id, doc_id, relevance (header line)")],
    out: Annotated[Path, typer.Option(help="Folder for summary.json, per_query.jsonl, report.html")] = Path("eval-out"),
    candidates: Annotated[Path | None, typer.Option(help="candidates.tsv: restrict each query to these docs")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions")] = None,
    target_precision: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.9,
    judge: Annotated[bool, typer.Option(help="Also ask an LLM judge (needs OPENAI_API_KEY); reported apart")] = False,
    index_dir: Annotated[Path | None, typer.Option(help="Index folder to reuse between runs (default OUT/index)")]
    = None,
    database_url: Annotated[str, typer.Option(
        help="A scratch database for the run's store, e.g. postgresql://... (default: SQLite in the index folder)")]
    = "",
) -> None:
    """Index CORPUS into a separate collection and ask every question through the assistant."""
    from eval.runner import EvalConfig

    _missing(corpus, queries, qrels, candidates)
    _run(EvalConfig(corpus=corpus, queries=queries, qrels=qrels, out=out, candidates=candidates, limit=limit,
                    target_precision=target_precision, judge=judge, index_dir=index_dir,
                    database_url=database_url))


@app.command("golden")
@friendly
def golden(
    golden_set: Annotated[Path, typer.Argument(help="Golden set JSONL: {id, kind, question, relevant: [pages]}")]
    = Path("eval/sets/answerdesk-docs.jsonl"),
    docs: Annotated[Path, typer.Option(help="The docs folder the set's pages are relative to")] = Path("docs"),
    out: Annotated[Path, typer.Option(help="Folder for summary.json, per_query.jsonl, report.html")]
    = Path("eval-out/golden"),
    target_precision: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.9,
) -> None:
    """Ask a golden set's questions over a docs folder: unanswerable and off-topic ones should escalate."""
    from eval.golden_docs import load
    from eval.runner import EvalConfig

    _missing(golden_set, docs)
    try:
        load(golden_set, docs)  # a malformed line is named before anything is indexed
    except (ValueError, KeyError) as exc:  # JSONDecodeError is a ValueError
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _run(EvalConfig(corpus=docs, queries=golden_set, qrels=None, out=out, target_precision=target_precision))


def _run(cfg: EvalConfig) -> None:
    from eval.report import write_report
    from eval.runner import run_eval

    settings = load_settings()
    judge, target_precision, out, corpus = cfg.judge, cfg.target_precision, cfg.out, cfg.corpus
    if judge and settings.openai_api_key is None:
        console.print("[red]error:[/red] --judge needs OPENAI_API_KEY (and OPENAI_BASE_URL for a local server); "
                      "the deterministic figures need neither: run without --judge.")
        raise typer.Exit(2)
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task("indexing corpus" if stage == "index" else "asking questions",
                                            total=total or None, item="")
            bar.update(tasks[stage], completed=done)

        summary = run_eval(cfg, settings, progress=progress)
    titles = {str(r["id"]): str(r.get("title", "")) for r in iter_corpus(corpus)} if cfg.qrels else {}
    report = write_report(out, titles)
    table = Table(title=f"{summary['dataset']}: {summary['queries']} questions")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary["metrics"].items():
        table.add_row(k, f"{v:.4f}")
    lat = summary["latency_ms"]
    table.add_row("latency p50 / p95 (ms)", f"{lat['p50']:.0f} / {lat['p95']:.0f}")
    chosen = summary["escalation"]["threshold"]
    table.add_row(f"threshold for {target_precision:.0%} precision", f"{chosen['threshold']:.3f}" if chosen else "none")
    console.print(table)
    if "judge" in summary:
        j = summary["judge"]
        console.print(f"LLM judge ({j['model']}, reported apart, not gated): faithfulness {j['faithfulness']}, "
                      f"answer relevance {j['answer_relevance']}, unparsed/failed {j['unparsed_or_failed']}")
    console.print(f"Wrote {out / 'summary.json'}, {out / 'per_query.jsonl'}, {out / 'ragas.jsonl'} and {report}")


@app.command("compare")
def compare_cmd(
    baseline: Annotated[Path, typer.Argument(help="Baseline summary.json")],
    current: Annotated[Path, typer.Argument(help="Current summary.json")],
    max_drop: Annotated[float, typer.Option(help="Largest allowed drop of any quality metric")] = 0.01,
) -> None:
    """Side-by-side figures; exits 1 when a metric dropped by more than --max-drop."""
    _missing(baseline, current)
    rows = compare(load_summary(baseline), load_summary(current), max_drop)
    table = Table(title=f"{baseline.name} -> {current.name} (max drop {max_drop})")
    for col in ("metric", "baseline", "current", "delta", ""):
        table.add_column(col, justify="right" if col not in ("metric", "") else "left")

    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:.4f}"

    for r in rows:
        delta = "—" if r["delta"] is None else f"{r['delta']:+.4f}"
        table.add_row(r["metric"], fmt(r["baseline"]), fmt(r["current"]), delta,
                      "[red]REGRESSION[/red]" if r["failed"] else "")
    console.print(table)
    failed = [r["metric"] for r in rows if r["failed"]]
    if failed:
        console.print(f"[red]Regression:[/red] {', '.join(failed)} dropped by more than {max_drop}")
        raise typer.Exit(1)
    console.print("[green]No regression.[/green]")


@app.command("calibrate")
def calibrate(
    summary: Annotated[Path, typer.Argument(help="summary.json of an eval run (per_query.jsonl beside it)")],
    env_file: Annotated[Path, typer.Option(help="Settings file to write")] = Path(".env"),
    target_precision: Annotated[float | None, typer.Option(help="Default: the run's target")] = None,
    model_out: Annotated[Path | None, typer.Option(help="Where to write the fitted confidence model "
                                                       "(default: confidence_model.json beside the env file)")]
    = None,
) -> None:
    """Fit the confidence model to this run's questions and write it and the threshold that reaches
    the target precision to the settings."""
    from assistant.answering.confidence import load_model
    from eval.calibrate import calibrate as fit
    from eval.metrics import coverage_precision, roc_curve, threshold_for_precision

    _missing(summary)
    data = load_summary(summary)
    esc = data["escalation"]
    target = target_precision if target_precision is not None else esc["target_precision"]
    per_query = summary.parent / "per_query.jsonl"
    rows: list[dict[str, Any]] = list(iter_corpus(per_query)) if per_query.exists() else []  # any JSONL file
    rows = [r for r in rows if r.get("features")]
    curve = esc["coverage_precision"]
    if rows:
        settings = load_settings()
        labels = [bool(r["cites_relevant"]) for r in rows]
        try:
            model, how = fit(load_model(settings.confidence_model), [r["features"] for r in rows], labels)
        except ValueError as exc:
            console.print(f"[red]Cannot calibrate:[/red] {exc}; settings unchanged.")
            raise typer.Exit(1) from None
        scores = [round(model.probability(r["features"]), 4) for r in rows]
        curve = coverage_precision(scores, labels)
        model_path = model_out or env_file.parent / "confidence_model.json"
        model_path.write_text(json.dumps(model.to_json(), indent=2))
        write_setting(env_file, "ANSWERDESK_CONFIDENCE_MODEL", str(model_path.resolve()))
        console.print(f"Confidence model {how} on {len(rows)} questions (AUC {roc_curve(scores, labels)[2]:.3f}), "
                      f"written to {model_path}.")
    chosen = threshold_for_precision(curve, target)
    if chosen is None:
        console.print(f"[red]No threshold reaches {target:.0%} precision on this run;[/red] threshold unchanged.")
        raise typer.Exit(1)
    write_threshold(env_file, chosen["threshold"])
    console.print(f"ANSWERDESK_CONFIDENCE_THRESHOLD={chosen['threshold']:.4f} written to {env_file} "
                  f"(coverage {chosen['coverage']:.1%}, precision {chosen['precision']:.1%}).")
    console.print_json(json.dumps(chosen))


@app.command("from-tickets")
@friendly
def from_tickets(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder for corpus.jsonl, queries.jsonl, qrels.tsv")] = Path("golden"),
    candidates: Annotated[bool, typer.Option(help="Include resolved escalations as cases")] = True,
) -> None:
    """Turn resolved tickets (and resolved escalations) into an eval set over the current knowledge base."""
    from assistant.escalation.candidates import collect_escalation_candidates
    from eval.golden import export

    svc = services(ctx)
    added = collect_escalation_candidates(svc.store)
    counts = export(svc, out, include_candidates=candidates)
    console.print(f"{counts['queries']} cases ({added} new from resolved escalations), {counts['qrels']} relevance "
                  f"judgements, {counts['documents']} documents written to {out}")
    if counts["queries"] == 0:
        console.print("[red]No resolved tickets found:[/red] run `answerdesk ingest jira` (or sync) first.")
        raise typer.Exit(1)
