"""The tool's boundary to Azure: cloud profiles (`cloud`), the SDK client factory
(`clients`); the only package that imports `azure.*`."""
