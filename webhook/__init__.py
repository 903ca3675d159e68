"""The admission webhook: runs the engine's rule set on AdmissionReviews in-cluster."""
