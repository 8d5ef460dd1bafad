"""Incremental sync cost of the Confluence connector: a 1,000-page fake space (tests/fakes/atlassian.py,
Cloud under /wiki and Data Center), indexed once, then synced again unchanged, then after edits.

    python -m eval.bench_connectors [--pages 1000] [--edits 10] [--contracts]

Prints a Markdown table: wall time, HTTP requests, requests that carry page bodies, chunks embedded.
The model is loaded (and warmed) before the clock starts; contract checking is off unless asked for,
since it measures the fake, not the connector.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the fake lives with the tests
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from assistant.embeddings import SentenceTransformerEmbedder  # noqa: E402
from assistant.services import Services  # noqa: E402
from assistant.settings import Settings, bundled_model_path  # noqa: E402
from ingest.confluence.pages import sync_confluence  # noqa: E402
from tests.fakes.atlassian import FakeAtlassian, shared_contracts  # noqa: E402

TOPICS = ["installation", "upgrades", "backups", "single sign-on", "rate limits", "webhooks", "exports",
          "audit logs", "billing", "search tuning"]


def page_body(n: int) -> str:
    topic = TOPICS[n % len(TOPICS)]
    return (
        f"<h1>{topic.title()} guide {n}</h1><p>This page explains {topic} for deployment {n}. Read it before "
        f"changing production settings; every step was tested on release 4.{n % 7}.</p>"
        f"<h2>Steps</h2><ol><li><p>Open the admin console and select {topic}.</p></li><li><p>Set the value "
        f"for tenant {n} and save.</p></li><li><p>Wait for the green status banner.</p></li></ol>"
        f'<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">bash</ac:parameter>'
        f"<ac:plain-text-body><![CDATA[answerdesk admin {topic.replace(' ', '-')} --tenant {n} --apply]]>"
        f"</ac:plain-text-body></ac:structured-macro>"
        f'<h2>Troubleshooting</h2><ac:structured-macro ac:name="note"><ac:rich-text-body><p>If {topic} fails '
        f"with error E{1000 + n}, collect the logs and restart the worker for tenant {n}.</p>"
        f"</ac:rich-text-body></ac:structured-macro>"
        f"<table><tbody><tr><th>Setting</th><th>Default</th></tr><tr><td>timeout</td><td>{30 + n % 60} s</td>"
        f"</tr></tbody></table>"
    )


def seed(fake: FakeAtlassian, pages: int) -> list[str]:
    fake.add_space("DOCS", "Product documentation")
    ids: list[str] = []
    for n in range(pages):
        parent = ids[(n - 1) // 10] if n and n % 10 else None  # a tree: every tenth page heads a section
        ids.append(fake.add_page("DOCS", f"Page {n:04d}", page_body(n), parent=parent, labels=["docs"],
                                 restricted_to=["staff"] if n % 97 == 0 else None))
    return ids


def measure(label: str, fake: FakeAtlassian, svc: Services, cloud: bool) -> dict[str, object]:
    fake.reset_log()
    started = time.perf_counter()
    stats = sync_confluence(svc, "bench", fake.confluence_url, ["DOCS"], cloud)
    seconds = time.perf_counter() - started
    bodies = fake.count(r"/rest/api/search$") + fake.count(r"/rest/api/content/\d+$")
    return {"run": label, "seconds": seconds, "requests": len(fake.log), "bodies": bodies,
            "embedded": stats.chunks_embedded, "summary": stats.summary()}


def bench(cloud: bool, pages: int, edits: int, contracts: bool, embedder: SentenceTransformerEmbedder) -> list[dict]:
    fake = FakeAtlassian(cloud, contracts=shared_contracts() if contracts else None).start()
    try:
        ids = seed(fake, pages)
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), confluence_user=fake.user,  # type: ignore[call-arg]
                                confluence_token=SecretStr(fake.token), _env_file=None)
            svc = Services(settings, embedder=embedder)
            rows = [measure("first run", fake, svc, cloud), measure("second run, unchanged", fake, svc, cloud)]
            for page_id in ids[5:5 + edits]:
                body = fake.pages[page_id].body.replace("Wait for the green", "Wait two minutes for the green")
                fake.update_page(page_id, body=body)
            rows.append(measure(f"after editing {edits} pages", fake, svc, cloud))
            svc.store.engine.dispose()
    finally:
        fake.stop()
    if contracts and fake.unexpected_violations():
        raise SystemExit("contract violations:\n" + "\n".join(map(str, fake.unexpected_violations())))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--contracts", action="store_true", help="also check every exchange against the specs")
    args = parser.parse_args(argv)
    embedder = SentenceTransformerEmbedder(bundled_model_path())
    embedder.embed([page_body(n) for n in range(256)], kind="document")  # first big batch pays one-off setup
    print(f"Confluence space of {args.pages} pages (tiny fake server on 127.0.0.1; contract checks "
          f"{'on' if args.contracts else 'off'})\n")
    print("| deployment | run | time | HTTP requests | of which carry page bodies | chunks embedded |")
    print("|---|---|---|---|---|---|")
    for cloud in (True, False):
        for row in bench(cloud, args.pages, args.edits, args.contracts, embedder):
            print(f"| {'Cloud (/wiki)' if cloud else 'Data Center'} | {row['run']} | {row['seconds']:.2f} s | "
                  f"{row['requests']} | {row['bodies']} | {row['embedded']} |")


if __name__ == "__main__":
    main()
