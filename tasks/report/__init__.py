"""Layer 3: every toolkit's results read back (:mod:`.readers`), as records (:mod:`.records`), tables
(:mod:`.tables`), figures (:mod:`.figures`) and class subsets (:mod:`.subsets`);
:mod:`.build` is ``clsbench report``."""
