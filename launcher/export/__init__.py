"""Results people use: export (local table, MLflow, W&B), side-by-side comparison, and the HTML report.

Everything here only reads invocation folders (through source.py) and never writes into them.
"""
