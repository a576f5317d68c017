"""Reports a person can open: self-contained HTML files (no network needed)."""
