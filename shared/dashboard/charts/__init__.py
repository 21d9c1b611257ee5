"""PNG charts of a series' summaries: the drawing (render), where the ticks go (ticks), the indexed PNG (png)."""
