"""Speed benchmarks of risc_tf (not part of the library or the tests).

Run each as a module from the repository root on a quiet machine, e.g.
``TF_CPP_MIN_LOG_LEVEL=3 python -m benchmarks.bench_training``; the data folder is
:data:`devdata.DATA_ROOT`. Research probes (what a trained model does, not how
fast) live in ``probes/``.
"""
