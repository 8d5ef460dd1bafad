"""Optional LLM judge (faithfulness, answer relevance) through any OpenAI-compatible server.

Never required and reported apart from the deterministic figures: a judge is a model's opinion,
and the release gate must not depend on one."""

from __future__ import annotations

import re
import statistics
from typing import Any

from assistant.answering.llm import chat_model, load_prompt
from assistant.settings import Settings

SCORE = re.compile(r"score\s*[:=]\s*([01](?:\.\d+)?)", re.I)


def parse_score(text: str) -> float | None:
    m = SCORE.search(text)
    return min(1.0, max(0.0, float(m.group(1)))) if m else None


def judge(rows: list[dict[str, Any]], contexts: list[list[str]], settings: Settings) -> dict[str, Any]:
    llm = chat_model(settings, streaming=False)
    faith_t = load_prompt(settings.prompts_dir, "judge_faithfulness.md")
    rel_t = load_prompt(settings.prompts_dir, "judge_relevance.md")
    faith: list[float] = []
    rel: list[float] = []
    failures = 0
    for row, ctx in zip(rows, contexts, strict=True):
        for template, bucket in ((faith_t, faith), (rel_t, rel)):
            prompt = template.format(contexts="\n\n".join(f"- {c}" for c in ctx), question=row["question"],
                                     answer=row["answer"])
            try:
                score = parse_score(str(llm.invoke(prompt).content))
            except Exception:  # a judge failure is counted, never fatal
                score = None
            if score is None:
                failures += 1
            else:
                bucket.append(score)
    return {
        "model": settings.llm_model,
        "faithfulness": statistics.fmean(faith) if faith else None,
        "answer_relevance": statistics.fmean(rel) if rel else None,
        "judged": len(rows), "unparsed_or_failed": failures,
    }
