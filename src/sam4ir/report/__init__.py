"""Turning evaluation outputs into the paper's tables and figures (Markdown + CSV + seaborn figures)."""
