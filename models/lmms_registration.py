"""The ``lmms_eval.models`` entry point: tells lmms-eval where clsbench's models live.

Kept apart from the model classes so that lmms-eval's start-up (which loads every entry point)
imports nothing heavy from here; a class is imported only when its ``--model`` name is used.
"""

from lmms_eval.models.registry_v2 import ModelManifest

MANIFESTS = [
    ModelManifest(model_id="clsbench_hf", simple_class_path="clsbench.models.lmms_hf.ClsbenchHF"),
    ModelManifest(model_id="clsbench_minicpm", simple_class_path="clsbench.models.lmms_remote.ClsbenchMiniCPM"),
]
