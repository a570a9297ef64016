"""batchimage: one YAML spec to a ready Azure Batch pool on a custom VM image."""

__version__ = "0.1.0"
