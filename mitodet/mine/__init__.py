"""Negative mining: stain-residual mining (residual.py) and hard-negative mining (hard.py)."""
