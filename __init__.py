"""vlm3r: spatial QA data from 3D indoor scans, and the VLM-3R model.

The repository root is this package (see pyproject.toml's package-dir mapping).
"""

__version__ = "0.1.0"
