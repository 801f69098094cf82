"""What the launcher keeps on disk: folder layout and run records, the index, stage records, results."""
