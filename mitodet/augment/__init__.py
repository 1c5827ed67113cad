"""The paper's augmentation protocol (shift, flips, elastic, CA-RGB / CA-OD), batched in torch."""
