"""Layer 0: what every run needs and no protocol knows: stores, locks, fingerprints, the version check."""
