"""The CAM methods risc_tf offers (a name table, importable without TensorFlow)."""

#: CAM methods; "scorecam" with ``max_n`` is Faster-Score-CAM.
METHODS = ("gradcam", "gradcam++", "scorecam")
