"""Microsoft.Network: virtual networks + subnets, NSGs, public IPs, network interfaces."""

from __future__ import annotations

from batchimage.sandbox.services import Service
from batchimage.sandbox.services.network import models
from batchimage.sandbox.services.network.urls import ROUTES

SERVICE = Service("network", routes=ROUTES, provisioners={"subnet": models.provision_subnet})
