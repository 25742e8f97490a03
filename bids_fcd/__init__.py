"""bids-fcd: pseudo-healthy FLAIR synthesis for focal cortical dysplasia localisation (BIDS App)."""

__version__ = "0.1.0"
CODE_URL = "https://github.com/bids-fcd/bids-fcd"

__all__ = ["__version__", "CODE_URL"]
