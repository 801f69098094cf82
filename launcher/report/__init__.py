"""The self-contained HTML report (`launcher report`)."""
