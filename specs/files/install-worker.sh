#!/bin/sh
# Installed into the image by specs/two-pools.yaml: the software every node needs.
set -eu
mkdir -p /opt/worker
printf '#!/bin/sh\necho "worker ready on $(hostname)"\n' > /opt/worker/run.sh
chmod 0755 /opt/worker/run.sh
