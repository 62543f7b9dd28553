"""Characterization: sweeps as data, content-addressed cache, curve artefacts, recipes."""
