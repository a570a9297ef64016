# Installed into the image by specs/windows-server.yaml.
$ErrorActionPreference = 'Stop'
New-Item -ItemType Directory -Force -Path 'C:\tools' | Out-Null
Set-Content -Path 'C:\tools\README.txt' -Value 'Tools baked into the image by batchimage.'
