"""Research probes: what trained RotNets and classifiers do, measured beside the library.

Not speed (that is ``benchmarks/``) and not part of the library or the tests. Run
each as a module from the repository root, e.g. ``python -m probes.angle_estimate
RUN ...``; the data folder is :data:`devdata.DATA_ROOT` unless a saved run names its own.
"""
