"""The tool's boundary to Azure: cloud profiles (`cloud`), the SDK client factory
(`clients`); the only package that imports `azure.*`. Importing it makes the SDK's
generated models safe to build from several threads (`sdk_threads`)."""

from batchimage.azure.sdk_threads import install

install()
