"""portfolio-tx."""
