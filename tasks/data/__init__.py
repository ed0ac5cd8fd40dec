"""Layer 2: bytes on disk and on the Hub: loading with label checks, images, prepared copies, negatives files, and
rows turned into questions (:mod:`.samples`). The package data (class lists, Hub label evidence, the papers' facts)
lives in this folder too."""
