"""eg-oidc: users named by OIDC / JWT bearer tokens (see README.md)."""
