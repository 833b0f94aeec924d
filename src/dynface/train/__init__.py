"""Training of the blur-level estimator (SDE, TM, SE) and of DGSA, on accelerate."""
