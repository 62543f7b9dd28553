"""Training: PyTorch neuron models built from curve artefacts."""
