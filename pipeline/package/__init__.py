"""Package the user's own model for Android and iOS: `python -m pipeline package SRC --samples S.npz`.

sources (detect + load) · samples (check the .npz) · exports (registry paths in a worker) · verify
(parity in each runtime) · choose (per platform) · manifest · bundle · stage (the straight line).
"""
