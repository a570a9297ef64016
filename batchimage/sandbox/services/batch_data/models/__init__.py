"""Batch data-plane state and rules, one module per kind (accounts, pools and their
changes, allocation, nodes, jobs and tasks, images, autoscale and its formula language);
no module here answers a request."""
