"""The answer-quality gate CI runs after the tests: `python -m eval.ci_gate`.

Each shared set (and the bundled-docs golden set) is evaluated through `answerdesk eval run` /
`eval golden` on a fixed slice, then compared with eval/baselines/<name>.json by `answerdesk eval
compare --max-drop`. The slices keep the whole gate within a few minutes on two cores; the
baselines were measured on the same slices (docs/evaluation.md has the full-set figures).
`--update` rewrites the baselines from this run instead of comparing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "eval-data"
BASELINES = ROOT / "eval" / "baselines"
GOLDEN = ROOT / "eval" / "sets" / "answerdesk-docs.jsonl"
MAX_DROP = "0.02"

# name -> arguments of `answerdesk eval run` (paths relative to the shared data folder)
SETS: dict[str, list[str]] = {
    "scifact": ["--corpus", "beir-scifact/corpus.jsonl", "--queries", "beir-scifact/queries.jsonl",
                "--qrels", "beir-scifact/qrels.tsv", "--limit", "100"],
    "stackfaq": ["--corpus", "stackfaq/corpus.jsonl", "--queries", "stackfaq/queries.jsonl",
                 "--qrels", "stackfaq/qrels.tsv", "--limit", "300"],
    "semeval2016-dev": ["--corpus", "semeval2016-cqa-subtaskB/dev/corpus.jsonl",
                        "--queries", "semeval2016-cqa-subtaskB/dev/queries.jsonl",
                        "--qrels", "semeval2016-cqa-subtaskB/dev/qrels.tsv",
                        "--candidates", "semeval2016-cqa-subtaskB/dev/candidates.tsv"],
}


# SciFact's 5,183 abstracts are indexed for 100 claims: embedding every sentence at ingest would
# triple the gate's time, so the answerer embeds the few sources it quotes instead (the same model
# and sentences, computed at question time rather than read from the index).
ENV: dict[str, dict[str, str]] = {"scifact": {"ANSWERDESK_SENTENCE_VECTORS": "false"}}


def answerdesk(*args: str, env: dict[str, str] | None = None) -> int:
    # The console script beside this interpreter: the same entry point a user types.
    exe = Path(sys.executable).parent / "answerdesk"
    return subprocess.run([str(exe), *args], cwd=ROOT, check=False, env={**os.environ, **(env or {})}).returncode


def main(argv: list[str]) -> int:
    update = "--update" in argv
    out = Path(next((a.split("=", 1)[1] for a in argv if a.startswith("--out=")), str(ROOT / "eval-out" / "ci")))
    if not DATA.is_dir():
        print(f"eval gate skipped: no shared eval data at {DATA} (../shared is absent in this clone)")
        return 0
    runs: dict[str, list[str]] = {}
    for name, args in SETS.items():
        paths = [a if a.startswith("--") or a.isdigit() else str(DATA / a) for a in args]
        runs[name] = ["eval", "run", *paths, "--out", str(out / name)]
    if GOLDEN.exists():
        runs["answerdesk-docs"] = ["eval", "golden", str(GOLDEN), "--docs", str(ROOT / "docs"),
                                   "--out", str(out / "answerdesk-docs")]
    else:
        print(f"golden set {GOLDEN} not found: gating the shared sets only")
    failed = []
    for name, args in runs.items():
        print(f"== {name}", flush=True)
        if answerdesk(*args, env=ENV.get(name)) != 0:
            failed.append(f"{name} (run failed)")
            continue
        summary, baseline = out / name / "summary.json", BASELINES / f"{name}.json"
        if update:
            shutil.copyfile(summary, baseline)
            print(f"baseline {baseline} updated")
        elif not baseline.exists():
            failed.append(f"{name} (no baseline {baseline}: run `python -m eval.ci_gate --update`)")
        elif answerdesk("eval", "compare", str(baseline), str(summary), "--max-drop", MAX_DROP) != 0:
            failed.append(name)
    if failed:
        print(f"eval gate FAILED: {', '.join(failed)}")
        return 1
    print(f"eval gate passed: {len(runs)} sets within {MAX_DROP} of their baselines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
