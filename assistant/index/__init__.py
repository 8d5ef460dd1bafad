"""The index: dense vectors in Chroma, keywords in bm25s, fused by the retriever."""
