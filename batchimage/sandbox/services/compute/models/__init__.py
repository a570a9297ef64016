"""Microsoft.Compute state and rules, one module per resource kind (VMs, disks, images,
galleries, extensions, run commands) plus what they share (disk content, blobs, quota,
the marketplace catalogue); no module here answers a request."""
