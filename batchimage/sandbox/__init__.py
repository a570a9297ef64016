"""The sandbox: a local Azure (ARM + Batch over HTTPS on loopback, Azurite for blobs)."""
