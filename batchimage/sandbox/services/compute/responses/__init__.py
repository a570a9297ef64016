"""Microsoft.Compute handlers beyond the generic resource operations: each parses a
request, calls the models and answers with Azure's wire shape."""
