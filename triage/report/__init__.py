"""Reports: self-contained HTML (no CDN, works offline), Chinese first, every value escaped."""
