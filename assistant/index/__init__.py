"""The index: dense vectors in Chroma, keywords in the database (or bm25s in the process), fused by the retriever."""
