"""Reading images and slides, writing points and outputs (atomically)."""
