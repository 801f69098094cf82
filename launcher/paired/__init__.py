"""Paired comparison of two runs over the same items, and the release gate (`launcher compare`, `gate`)."""
