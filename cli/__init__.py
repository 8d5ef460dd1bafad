"""The `answerdesk` command line: the edge of the application. It imports assistant/, ingest/ and eval/;
nothing imports it. Each concern is a small module with its command group; main.py assembles them."""
