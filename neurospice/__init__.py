"""neurospice: neuron circuits (ngspice) -> characterized curves -> trainable neuron models.

Sub-packages: ``neurospice.circuits`` (engine, technologies, netlist builders),
``neurospice.netlists`` (shipped SPICE templates), ``neurospice.characterize``
(sweeps, cache, curve artefacts, recipes), ``neurospice.training`` (PyTorch models).
"""
__version__ = "0.1.0"
