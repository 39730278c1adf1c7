"""validate stage (DESIGN.md §7)."""

__all__: list[str] = []
