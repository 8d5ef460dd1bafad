"""Answering: answerers behind one seam, citation checks, confidence, follow-up rewriting."""
