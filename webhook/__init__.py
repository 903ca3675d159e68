"""The in-cluster admission webhook: gathers cluster facts, runs the engine's rule set."""
