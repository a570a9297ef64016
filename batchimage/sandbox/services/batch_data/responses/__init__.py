"""Batch data-plane handlers and wire shapes: each handler parses a request, calls the
models and answers with the pool, node, job, task or file as Batch returns it."""
