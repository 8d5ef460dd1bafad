"""The eval harness end to end on a tiny BEIR-style set: files and report produced, the live
index untouched, candidate restriction, the regression gate and calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

DOCS = {
    "d1": ("Resetting a password", "Use the forgot-password link on the sign-in page to reset your password."),
    "d2": ("Exporting data", "Export your projects as CSV from Settings, then Data, then Export."),
    "d3": ("Deleting an account", "Accounts are deleted 30 days after you request deletion in the profile page."),
    "d4": ("Two-factor authentication", "Enable two-factor authentication with an authenticator app under Security."),
    "d5": ("Billing cycles", "Invoices are issued on the first day of each month and paid by card."),
    "d6": ("API rate limits", "The API allows 600 requests per minute per token; over that it answers 429."),
}
QUERIES = [
    ("q1", "How can I reset my password?", "d1", "Use the forgot-password link on the sign-in page."),
    ("q2", "how do I export my projects to csv", "d2", None),
    ("q3", "when is my account actually deleted", "d3", None),
    ("q4", "turn on 2FA with an authenticator", "d4", None),
    ("q5", "how many API requests per minute are allowed", "d6", None),
]


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    root.mkdir()
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"id": k, "title": t, "text": x}) + "\n" for k, (t, x) in DOCS.items()))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"id": q, "question": text, **({"answer": a} if a else {})}) + "\n" for q, text, _, a in QUERIES))
    qrels = "".join(f"{q}\t{d}\t1\n" for q, _, d, _ in QUERIES)
    (root / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\n" + qrels)
    return root


def cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    from cli.main import app

    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **env})
    return result.exit_code, result.output


def test_eval_run_writes_figures_report_and_leaves_live_index_alone(tiny_set: Path, tmp_path: Path) -> None:
    live = tmp_path / "live-data"
    out = tmp_path / "out"
    code, output = cli("eval", "run", "--corpus", str(tiny_set / "corpus.jsonl"), "--queries",
                       str(tiny_set / "queries.jsonl"), "--qrels", str(tiny_set / "qrels.tsv"), "--out", str(out),
                       env={"ANSWERDESK_DATA_DIR": str(live)})
    assert code == 0, output
    assert not live.exists()  # never the live index
    summary = json.loads((out / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["queries"] == 5 and summary["documents"] == 6
    assert m["ndcg@10"] > 0.9 and m["recall@5"] == 1.0 and m["answer_cites_relevant"] >= 0.8
    assert m["citation_marker_validity"] == 1.0 and 0 <= m["citation_support"] <= 1
    assert "answer_token_f1" in m and "answer_rouge_l" in m  # q1 carries a reference answer
    assert summary["git_revision"] and summary["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert summary["latency_ms"]["p95"] >= summary["latency_ms"]["p50"] > 0
    rows = [json.loads(x) for x in (out / "per_query.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4", "q5"]
    assert rows[0]["retrieved"][0] == "d1" and rows[0]["cites_relevant"]
    ragas = [json.loads(x) for x in (out / "ragas.jsonl").read_text().splitlines()]
    assert set(ragas[0]) == {"user_input", "retrieved_contexts", "response", "reference"}
    assert ragas[0]["reference"].startswith("Use the forgot-password")
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == 4 and "tiny" in report and "ndcg@10" in report
    assert "reliability diagram" in report and "expected calibration error" in report
    assert 0 <= summary["escalation"]["ece"] <= 1 and summary["escalation"]["reliability"]
    assert set(rows[0]["features"]) >= {"top_cosine", "gap", "agreement"}
    assert "ndcg@10" in output and "report.html" in output


def test_candidates_restrict_each_query(tiny_set: Path, tmp_path: Path) -> None:
    (tiny_set / "candidates.tsv").write_text("query_id\tdoc_id\tir_rank\n" + "".join(
        f"q1\t{d}\t{i}\n" for i, d in enumerate(["d5", "d6", "d1"], 1)))
    out = tmp_path / "out"
    code, output = cli("eval", "run", "--corpus", str(tiny_set / "corpus.jsonl"), "--queries",
                       str(tiny_set / "queries.jsonl"), "--qrels", str(tiny_set / "qrels.tsv"), "--out", str(out),
                       "--candidates", str(tiny_set / "candidates.tsv"), env={})
    assert code == 0, output
    rows = [json.loads(x) for x in (out / "per_query.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1"]
    assert set(rows[0]["retrieved"]) <= {"d5", "d6", "d1"} and rows[0]["retrieved"][0] == "d1"
    assert set(rows[0]["cited_docs"]) <= {"d5", "d6", "d1"}


def test_gate_fails_on_a_planted_regression_and_calibrate_writes_settings(tmp_path: Path) -> None:
    base = {"dataset": "x", "metrics": {"ndcg@10": 0.70, "map": 0.60, "escalated_share": 0.1},
            "escalation": {"target_precision": 0.9, "coverage_precision": [
                {"threshold": 0.3, "coverage": 1.0, "precision": 0.7},
                {"threshold": 0.5, "coverage": 0.6, "precision": 0.92},
                {"threshold": 0.8, "coverage": 0.2, "precision": 1.0}]}}
    (tmp_path / "base.json").write_text(json.dumps(base))
    same = dict(base, metrics={"ndcg@10": 0.695, "map": 0.61, "escalated_share": 0.5})
    (tmp_path / "same.json").write_text(json.dumps(same))
    worse = dict(base, metrics={"ndcg@10": 0.65, "map": 0.61, "escalated_share": 0.1})
    (tmp_path / "worse.json").write_text(json.dumps(worse))

    code, out = cli("eval", "compare", str(tmp_path / "base.json"), str(tmp_path / "same.json"), env={})
    assert code == 0 and "No regression" in out
    code, out = cli("eval", "compare", str(tmp_path / "base.json"), str(tmp_path / "worse.json"), env={})
    assert code == 1 and "REGRESSION" in out and "ndcg@10" in out.split("Regression:")[1]
    code, out = cli("eval", "compare", str(tmp_path / "base.json"), str(tmp_path / "worse.json"),
                    "--max-drop", "0.06", env={})
    assert code == 0

    env_file = tmp_path / ".env"
    env_file.write_text("ANSWERDESK_RETRIEVAL_K=5\nANSWERDESK_CONFIDENCE_THRESHOLD=0.45\n")
    code, out = cli("eval", "calibrate", str(tmp_path / "base.json"), "--env-file", str(env_file), env={})
    assert code == 0, out
    assert env_file.read_text() == "ANSWERDESK_RETRIEVAL_K=5\nANSWERDESK_CONFIDENCE_THRESHOLD=0.5000\n"
    code, out = cli("eval", "calibrate", str(tmp_path / "base.json"), "--env-file", str(env_file),
                    "--target-precision", "1.01", env={})
    assert code != 0


def test_optional_llm_judge_reported_apart(tiny_set: Path, tmp_path: Path) -> None:
    from tests.fakes.openai_stub import OpenAIStub

    args = ["eval", "run", "--corpus", str(tiny_set / "corpus.jsonl"), "--queries", str(tiny_set / "queries.jsonl"),
            "--qrels", str(tiny_set / "qrels.tsv"), "--out", str(tmp_path / "out"), "--judge"]
    code, out = cli(*args, env={"OPENAI_API_KEY": ""})
    assert code == 2 and "OPENAI_API_KEY" in out  # never required: a clear refusal, nothing run
    stub = OpenAIStub()
    base_url = stub.start()
    try:
        code, out = cli(*args, env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": base_url,
                                    "ANSWERDESK_LLM_MODEL": "stub-normal"})
    finally:
        stub.stop()
    assert code == 0, out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    judge = summary["judge"]
    assert judge["judged"] == 5 and judge["unparsed_or_failed"] == 0
    assert 0.25 <= judge["faithfulness"] <= 1 and 0.25 <= judge["answer_relevance"] <= 1
    assert "faithfulness" not in summary["metrics"]  # the gate never sees a model's opinion
    assert sum('Reply with one line "Score: X"' in r["messages"][-1]["content"] for r in stub.requests) == 10


GOLDEN_DOCS = {
    "passwords.md": "# Passwords\n\n## Resetting a password\n\nUse the forgot-password link on the sign-in page.\n",
    "exports.md": "# Exporting data\n\nExport your projects as CSV from Settings, then Data, then Export.\n",
    "limits.md": "# API rate limits\n\nThe API allows 600 requests per minute per token; over that it answers 429.\n",
}
GOLDEN = [
    {"id": "g1", "kind": "answerable", "question": "I forgot my password, how do I get back in?",
     "relevant": ["passwords.md"]},
    {"id": "g2", "kind": "answerable", "question": "how many api calls a minute can I make", "relevant": ["limits.md"]},
    {"id": "g3", "kind": "unanswerable", "question": "Can I export my projects as PDF?", "relevant": []},
    {"id": "g4", "kind": "offtopic", "question": "What is the best recipe for banana bread?", "relevant": []},
]


def test_golden_set_counts_unanswered_questions_as_should_escalate(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in GOLDEN_DOCS.items():
        (docs / name).write_text(text)
    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(json.dumps(g) + "\n" for g in GOLDEN))
    out = tmp_path / "out"
    code, output = cli("eval", "golden", str(golden), "--docs", str(docs), "--out", str(out), env={})
    assert code == 0, output
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["id"]: r for r in map(json.loads, (out / "per_query.jsonl").read_text().splitlines())}
    assert [rows[g]["kind"] for g in ("g1", "g3", "g4")] == ["answerable", "unanswerable", "offtopic"]
    assert rows["g1"]["retrieved"][0] == "passwords.md" and rows["g1"]["cites_relevant"]
    assert not rows["g3"]["cites_relevant"] and not rows["g4"]["cites_relevant"]  # right only by escalating
    m = summary["metrics"]
    assert m["right_page_first"] == 1.0 and {"answerable_answered", "unanswerable_escalated"} <= set(m)
    assert rows["g4"]["escalated"] and rows["g4"]["confidence"] < rows["g1"]["confidence"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "kind": "maybe", "question": "?"}) + "\n")
    code, output = cli("eval", "golden", str(bad), "--docs", str(docs), "--out", str(out), env={})
    assert code != 0 and "kind" in output and "Traceback" not in output


def test_calibrate_fits_the_model_to_a_runs_questions(tmp_path: Path) -> None:
    import random

    rng = random.Random(3)
    rows = []
    for i in range(80):
        right = i % 2 == 0
        cos = rng.uniform(0.5, 0.9) if right else rng.uniform(0.1, 0.6)
        rows.append({"id": str(i), "cites_relevant": right, "confidence": 0.9, "features": {
            "top_cosine": cos, "cosine_margin": 0.1, "gap": 1.0, "score_margin": 0.5, "section_terms": 0.5,
            "field_cosine": 0.3, "agreement": 1.0, "top_ranks": 0.7, "question_terms": 2.0,
            "sentence_cosine": cos, "sentence_margin": 0.1, "source_terms": 1.0, "unknown_terms": 0.0}})
    run = tmp_path / "run"
    run.mkdir()
    (run / "per_query.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run / "summary.json").write_text(json.dumps({"metrics": {}, "escalation": {
        "target_precision": 0.9, "coverage_precision": []}}))
    env_file = tmp_path / ".env"
    code, out = cli("eval", "calibrate", str(run / "summary.json"), "--env-file", str(env_file), env={})
    assert code == 0, out
    assert "recalibrated on 80 questions" in out
    settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    model = json.loads(Path(settings["ANSWERDESK_CONFIDENCE_MODEL"]).read_text())
    assert model["platt"] != [1.0, 0.0]
    assert 0.0 < float(settings["ANSWERDESK_CONFIDENCE_THRESHOLD"]) < 1.0
