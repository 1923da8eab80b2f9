"""Qt widgets: one studio per file. Widgets are touched only on the GUI thread."""
